"""A real Postfix instance as the SENDING MTA, to see what a sender does with each reply of ``smtplens serve``.

The instance lives in a private directory (config, queue, data and log), listens with its own smtpd on a free
port of 127.0.0.1 (mail is submitted there with SMTP; its 250 names the queue id) and relays everything that is
not for its own domain to ``relayhost = [127.0.0.1]:PORT``, the server under test, from ``bind_address`` (any
address of 127.0.0.0/8, so the server can answer by client address). Retries are fast (a deferred message is
tried again after 1–2 s) so a greylisted message gets through within a test. Bounces go to the sender's domain,
which is local to the instance and discarded, so they never reach the server under test.

:class:`PostfixSender` reads the outcome of each recipient from the maillog: the ``status=`` lines Postfix's smtp
client writes (:func:`parse_delivery`). It is started and stopped by PID like the lab's other daemons.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.integration.conftest import POSTFIX_SERVICES, Daemon, free_port, need, need_root, start, wait_until

__all__ = [
    "SENDER_DOMAIN",
    "SENDER_HOSTNAME",
    "Delivery",
    "PostfixSender",
    "need_sasl_modules",
    "parse_delivery",
    "postfix_sender",
]

SENDER_DOMAIN = "sender.lab.test"  # the instance's own domain: bounces to it are discarded
SENDER_HOSTNAME = f"postfix.{SENDER_DOMAIN}"
LOG_TIMEOUT = 30.0

# The services a sending instance needs: the lab's (queue, bounces, …), the smtp client and TLS; its smtpd is
# added per instance.
_SERVICES = (
    POSTFIX_SERVICES
    + """\
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
virtual   unix  -       n       n       -       -       virtual
"""
)


def sender_main_cf(home: Path, relay_port: int, bind_address: str, extra: dict[str, str]) -> str:
    """main.cf of a sending instance relaying to ``[127.0.0.1]:relay_port`` from ``bind_address``."""
    settings = {
        "compatibility_level": "3.6",
        "config_directory": str(home / "conf"),
        "queue_directory": str(home / "queue"),
        "data_directory": str(home / "data"),
        "maillog_file": str(home / "log" / "maillog"),
        "maillog_file_prefixes": str(home),
        "myhostname": SENDER_HOSTNAME,
        "mydomain": SENDER_DOMAIN,
        "myorigin": "$mydomain",
        "mydestination": SENDER_DOMAIN,
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        # only the test itself (which submits from 127.0.0.1) may relay through this instance
        "mynetworks": "127.0.0.1/32",
        "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
        "smtp_dns_support_level": "disabled",
        "default_transport": "smtp",
        "relayhost": f"[127.0.0.1]:{relay_port}",
        "smtp_bind_address": bind_address,
        "local_transport": "discard:",
        "local_recipient_maps": "",
        "alias_maps": "",
        "alias_database": "",
        "biff": "no",
        # retry deferred mail within seconds, not minutes
        "queue_run_delay": "1s",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "2s",
        # no connection reuse: every delivery attempt is a session of its own on the server
        "smtp_connection_cache_on_demand": "no",
        "smtp_connection_cache_destinations": "",
        "smtp_tls_security_level": "none",
    }
    settings.update(extra)
    return "".join(f"{name} = {value}\n" for name, value in settings.items())


_DELIVERY = re.compile(
    r"(?P<queue_id>[0-9A-F]{6,}): to=<(?P<recipient>[^>]*)>,(?: orig_to=<[^>]*>,)? relay=(?P<relay>[^,]+),"
    r".*? dsn=(?P<dsn>[245]\.\d{1,3}\.\d{1,3}), status=(?P<status>\w+) \((?P<reason>.*)\)$"
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient's outcome as Postfix logged it: ``status`` is sent, deferred or bounced."""

    queue_id: str
    recipient: str
    relay: str
    dsn: str
    status: str
    reason: str
    line: str


def parse_delivery(line: str) -> Delivery | None:
    """The delivery status in a maillog line, or None when the line is about something else."""
    found = _DELIVERY.search(line)
    if found is None:
        return None
    return Delivery(line=line, **found.groupdict())


class PostfixSender:
    """A running sending instance: submit mail, read what happened to it, force a queue run."""

    def __init__(self, home: Path, port: int, daemon: Daemon, postqueue: str) -> None:
        self.home = home
        self.port = port
        self.daemon = daemon
        self.maillog = home / "log" / "maillog"
        self._postqueue = postqueue

    def submit(
        self,
        sender: str,
        recipients: list[str],
        message: bytes,
        *,
        mail_options: Sequence[str] = (),
        rcpt_options: Sequence[str] = (),
    ) -> str:
        """Hand a message to the instance with SMTP; the queue id from its ``250 2.0.0 Ok: queued as ID``.
        The options are ESMTP parameters (``SMTPUTF8``, ``ENVID=…``, ``NOTIFY=…``) for MAIL and every RCPT."""
        with smtplib.SMTP("127.0.0.1", self.port, local_hostname="submit.lab.test", timeout=10) as client:
            if "SMTPUTF8" in mail_options:
                client.command_encoding = "utf-8"
            client.ehlo()
            code, text = client.mail(sender, list(mail_options))
            assert code == 250, (sender, code, text)
            for recipient in recipients:
                code, text = client.rcpt(recipient, list(rcpt_options))
                assert code == 250, (recipient, code, text)
            code, text = client.data(message)
        assert code == 250, text
        queue_id = text.decode("ascii").rpartition(" ")[2]
        assert re.fullmatch(r"[0-9A-F]{6,}", queue_id), text
        return queue_id

    def log_lines(self) -> list[str]:
        try:
            return self.maillog.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def deliveries(self, queue_id: str) -> list[Delivery]:
        """Every status line logged so far for ``queue_id``, in order."""
        found = (parse_delivery(line) for line in self.log_lines() if f" {queue_id}: to=<" in line)
        return [delivery for delivery in found if delivery is not None and delivery.queue_id == queue_id]

    def wait_for_status(
        self, queue_id: str, status: str, *, count: int = 1, flush: bool = False, timeout: float = LOG_TIMEOUT
    ) -> list[Delivery]:
        """The deliveries of ``queue_id`` logged so far, once ``count`` of them have ``status``. With ``flush``,
        ``postqueue -f`` every second while waiting: Postfix retries deferred mail on its own, but a queue scan
        that meets the message while its delivery agent is still finishing ("skipped, still being delivered")
        postpones it well beyond ``minimal_backoff_time``; a flush ignores those time stamps."""
        deadline = time.monotonic() + timeout
        next_flush = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            self.daemon.assert_running()
            deliveries = self.deliveries(queue_id)
            if sum(delivery.status == status for delivery in deliveries) >= count:
                return deliveries
            if flush and time.monotonic() >= next_flush:
                self.flush()
                next_flush = time.monotonic() + 1.0
            time.sleep(0.1)
        lines = [line for line in self.log_lines() if queue_id in line or "warning" in line or "fatal" in line]
        pytest.fail(f"Postfix logged no status={status} for {queue_id} within {timeout:.0f} s:\n" + "\n".join(lines))

    def wait_for_log(self, needle: str, timeout: float = LOG_TIMEOUT) -> str:
        """The first maillog line containing ``needle`` (Postfix logs asynchronously)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_lines():
                if needle in line:
                    return line
            time.sleep(0.1)
        pytest.fail(f"Postfix did not log {needle!r}:\n" + "\n".join(self.log_lines()[-30:]))

    def postqueue(self, *args: str) -> str:
        result = subprocess.run(
            [self._postqueue, "-c", str(self.home / "conf"), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def queue(self) -> str:
        """``postqueue -p``: the queue listing, with the reason each deferred recipient is waiting."""
        return self.postqueue("-p")

    def flush(self) -> None:
        """``postqueue -f``: try every queued message now."""
        self.postqueue("-f")


def need_sasl_modules() -> None:
    """Postfix's SMTP client does AUTH PLAIN/LOGIN through Cyrus SASL's plug-ins (Debian: libsasl2-modules,
    only a recommendation of postfix): fail in CI, skip elsewhere, when they are missing."""
    roots = [Path("/usr/lib/sasl2"), *Path("/usr/lib").glob("*/sasl2")]
    if not any(any(root.glob("libplain.so*")) and any(root.glob("liblogin.so*")) for root in roots):
        message = "Cyrus SASL's PLAIN and LOGIN plug-ins are not installed; apt-get install libsasl2-modules"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def _directory(path: Path, owner: str | None = None) -> Path:
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _greets(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            return conn.recv(512).startswith(b"220")
    except OSError:
        return False


@contextlib.contextmanager
def postfix_sender(relay_port: int, *, bind_address: str = "127.0.0.1", **settings: str) -> Iterator[PostfixSender]:
    """A Postfix instance relaying to ``[127.0.0.1]:relay_port``; ``settings`` override main.cf. Its directory
    is made readable by user postfix (pytest's own temporary directories are not) and removed at the end.
    Needs root (Postfix drops privileges to its own user) and the postfix package."""
    program = need("postfix")
    postqueue = need("postqueue")
    need_root("Postfix")
    home = Path(tempfile.mkdtemp(prefix="smtplens-postfix-sender-"))
    home.chmod(0o755)
    conf = _directory(home / "conf")
    _directory(home / "queue")
    _directory(home / "log")
    _directory(home / "data", owner="postfix")
    port = free_port()
    (conf / "main.cf").write_text(sender_main_cf(home, relay_port, bind_address, settings), encoding="utf-8")
    (conf / "master.cf").write_text(f"127.0.0.1:{port} inet n - n - - smtpd\n{_SERVICES}", encoding="utf-8")
    pid_file = home / "queue" / "pid" / "master.pid"
    daemon = start("postfix sender", [program, "-c", str(conf), "start-fg"], home / "start.log", pid_file=pid_file)
    try:
        wait_until(daemon, lambda: _greets(port), "greet on its port")
        yield PostfixSender(home, port, daemon, postqueue)
    finally:
        daemon.stop()
        shutil.rmtree(home, ignore_errors=True)
