"""``smtplens serve --config FILE --http …`` as a user runs it: one process, SMTP and the HTTP API together.

The server is started as a subprocess on ports chosen by the system (``127.0.0.1:0``); the addresses are read
from what it prints. Real clients: smtplib for SMTP, httpx for the API.
"""

from __future__ import annotations

import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from smtplens.server.store import MessageStore

DOMAIN = "lab.test"
SENDER = "sender@client.test"
MESSAGE = (
    b"From: sender@client.test\r\nTo: a@lab.test\r\nSubject: hi\r\n"
    b"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\nhello\r\n"
)
CONFIG = f"""
[smtp]
listen = "127.0.0.1:0"
hostname = "mx.lab.test"
accept_domains = ["{DOMAIN}"]

[http]
listen = "127.0.0.1:0"

[store]
directory = "data"

[content]

[[scenario]]
id = "full"
recipient = "full@*"
reply = "452 4.2.2 Mailbox full"
"""


class Running:
    def __init__(self, process: subprocess.Popen[bytes], smtp: tuple[str, int], http: str, lines: list[str]) -> None:
        self.process = process
        self.smtp = smtp
        self.http = http
        self.lines = lines


def _read_lines(stream: IO[bytes], lines: list[str]) -> None:
    for raw in stream:
        lines.append(raw.decode("utf-8", "replace"))


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    config = tmp_path / "smtplens.toml"
    config.write_text(CONFIG, encoding="utf-8")
    code = "import sys; from smtplens.cli.main import run; sys.argv[0] = 'smtplens'; run()"
    argv = [sys.executable, "-c", code, "serve", "--config", str(config)]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert process.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(process.stderr, lines), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        smtp = http = None
        while smtp is None or http is None:
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError("serve did not start: " + "".join(lines))
            text = "".join(lines)
            if found := re.search(r"SMTP on ([0-9.]+):(\d+)", text):
                smtp = (found[1], int(found[2]))
            if found := re.search(r"(http://[0-9.]+:\d+)/", text):
                http = found[1]
            time.sleep(0.05)
        yield Running(process, smtp, http, lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_config_file_smtp_and_http_api_work_together(running: Running, tmp_path: Path) -> None:
    with smtplib.SMTP(*running.smtp, timeout=10) as client:
        client.sendmail(SENDER, [f"a@{DOMAIN}"], MESSAGE)
        # The scenario from the config file answers 452 for its address.
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(SENDER, [f"full@{DOMAIN}"], MESSAGE)
        assert refused.value.recipients[f"full@{DOMAIN}"][0] == 452
        # The [content] check: a message without a Date field is refused at the end of data.
        with pytest.raises(smtplib.SMTPDataError) as malformed:
            client.sendmail(SENDER, [f"a@{DOMAIN}"], b"From: sender@client.test\r\nSubject: x\r\n\r\nno date\r\n")
        error = malformed.value.smtp_error
        assert malformed.value.smtp_code == 554
        assert (error if isinstance(error, bytes) else error.encode()).startswith(b"5.6.0")
    with httpx.Client(base_url=running.http, timeout=10) as api:
        messages = api.get("/api/messages").json()
        assert [m["recipients"] for m in messages["messages"]] == [[f"a@{DOMAIN}"]]
        # A scenario added over HTTP is played by the running SMTP server.
        added = api.post(
            "/api/scenarios", json={"id": "gone", "recipient": "gone@*", "reply": "550 5.1.1 No such user"}
        )
        assert added.status_code == 201, added.text
        with smtplib.SMTP(*running.smtp, timeout=10) as client:
            client.ehlo()
            client.mail(SENDER)
            assert client.rcpt(f"gone@{DOMAIN}")[0] == 550
        # Maintenance switched over HTTP: the next connection gets a 421 greeting.
        assert api.put("/api/maintenance", json={"enabled": True}).status_code == 200
        with pytest.raises(smtplib.SMTPConnectError) as closed:
            smtplib.SMTP(*running.smtp, timeout=10)
        assert closed.value.smtp_code == 421
        metrics = api.get("/metrics").text
        assert "smtplens_" in metrics
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(30) == 0
    assert "stopped" in "".join(running.lines)
    with MessageStore(tmp_path / "data") as store:
        assert [info.recipients for info in store.messages()] == [(f"a@{DOMAIN}",)]
