"""The HTTP API, metrics and UI pages of ``smtplens serve`` against a real SMTP server, store and HTTP server.

Every test starts the lab of ``tests/http_lab.py`` (SmtpServer and uvicorn on 127.0.0.1, port 0, a store in
tmp_path), delivers real mail with smtplib and reads it back with httpx, as any client of the API would.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from smtplens.server.http.mailview import TEXT_LIMIT, view_message
from smtplens.server.http.security import SECURITY_HEADERS
from smtplens.server.net import ServerConfig, SmtpServer
from smtplens.server.observer import final_replies
from smtplens.server.scenarios import ScenarioBook
from tests.http_lab import DOMAIN, HttpLab, wait_for


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[HttpLab]:
    lab = HttpLab(tmp_path / "store", retention_count=2)
    try:
        yield lab
    finally:
        lab.stop()


def error_of(response: object) -> str:
    import httpx

    assert isinstance(response, httpx.Response)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"], str)
    return body["error"]


def metric(lab: HttpLab, name: str, **labels: str) -> float:
    """The value of one sample of ``GET /metrics`` (0 when it is not there yet)."""
    response = lab.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


# -- health ------------------------------------------------------------------------------------------------------


def test_health_names_the_server_and_its_store(lab: HttpLab) -> None:
    lab.send("one")
    health = lab.client.get("/api/health").json()
    assert health["status"] == "ok"
    assert health["version"]
    assert health["uptime"] >= 0
    assert health["smtp"] == {"host": "127.0.0.1", "port": lab.smtp_port}
    assert health["connections"] == 0
    assert health["maintenance"] is False
    assert health["store"]["messages"] == 1
    assert health["store"]["messages_stored"] == 1
    assert health["store"]["sessions_recorded"] >= 1
    assert health["scenarios"] is False


# -- messages ----------------------------------------------------------------------------------------------------


def test_messages_are_listed_newest_first_with_paging_and_search(lab: HttpLab) -> None:
    lab.send("first report")
    lab.send("second report")
    listing = lab.client.get("/api/messages").json()
    assert listing["total"] == 2
    assert [m["subject"] for m in listing["messages"]] == ["second report", "first report"]
    assert listing["messages"][0]["recipients"] == [f"bob@{DOMAIN}"]
    assert "envelope" not in listing["messages"][0]

    page = lab.client.get("/api/messages", params={"limit": 1, "offset": 1}).json()
    assert [m["subject"] for m in page["messages"]] == ["first report"]
    assert (page["limit"], page["offset"], page["total"]) == (1, 1, 2)

    found = lab.client.get("/api/messages", params={"q": "SECOND"}).json()
    assert [m["subject"] for m in found["messages"]] == ["second report"]
    assert found["total"] == 1
    assert lab.client.get("/api/messages", params={"q": "nothing like it"}).json()["messages"] == []


def test_a_message_shows_envelope_headers_text_and_session(lab: HttpLab) -> None:
    lab.send("Quarterly numbers", body="The numbers are in.\n")
    summary = lab.client.get("/api/messages").json()["messages"][0]
    detail = lab.client.get(f"/api/messages/{summary['id']}").json()
    assert detail["id"] == detail["queue_id"] == summary["id"]
    assert detail["mail_from"] == "alice@example.test"
    assert detail["recipients"] == [f"bob@{DOMAIN}"]
    assert detail["helo"] == "client.example.test"
    assert detail["client_address"] == "127.0.0.1"
    assert detail["size"] > 0
    assert detail["received_at"] > 0
    assert detail["envelope"]["mail"]["address"] == "alice@example.test"
    view = detail["view"]
    assert ["Subject", "Quarterly numbers"] in view["headers"]
    assert view["text"].strip() == "The numbers are in."
    assert view["text_type"] == "text/plain"
    session = lab.client.get(f"/api/sessions/{detail['session_id']}")
    assert session.status_code == 200


def test_the_raw_message_is_the_stored_bytes(lab: HttpLab) -> None:
    lab.send("raw please")
    queue_id = lab.client.get("/api/messages").json()["messages"][0]["id"]
    stored = lab.store.message(queue_id)
    assert stored is not None and stored.raw is not None
    raw = lab.client.get(f"/api/messages/{queue_id}/raw")
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "message/rfc822"
    assert raw.content == stored.raw
    assert "content-disposition" not in raw.headers
    download = lab.client.get(f"/api/messages/{queue_id}/raw", params={"download": "true"})
    assert download.headers["content-disposition"] == f'attachment; filename="{queue_id}.eml"'


def test_deleting_a_message(lab: HttpLab) -> None:
    lab.send("to delete")
    queue_id = lab.client.get("/api/messages").json()["messages"][0]["id"]
    response = lab.client.delete(f"/api/messages/{queue_id}")
    assert response.status_code == 200
    assert response.json() == {"deleted": queue_id}
    assert lab.client.get(f"/api/messages/{queue_id}").status_code == 404
    assert "no message" in error_of(lab.client.delete(f"/api/messages/{queue_id}"))


def test_purge_applies_the_retention_and_all_deletes_everything(lab: HttpLab) -> None:
    for subject in ("m1", "m2", "m3"):
        lab.send(subject)
    purged = lab.client.delete("/api/messages")
    assert purged.status_code == 200
    assert purged.json()["messages"] == 1  # retention_count=2 keeps the two newest
    assert purged.json()["all"] is False
    assert [m["subject"] for m in lab.client.get("/api/messages").json()["messages"]] == ["m3", "m2"]
    everything = lab.client.delete("/api/messages", params={"all": "true"}).json()
    assert everything == {"messages": 2, "sessions": 0, "all": True}
    assert lab.client.get("/api/messages").json()["total"] == 0


def test_message_errors_are_json(lab: HttpLab) -> None:
    assert lab.client.get("/api/messages/NOSUCHID").status_code == 404
    assert "no message" in error_of(lab.client.get("/api/messages/NOSUCHID"))
    assert lab.client.get("/api/messages/NOSUCHID/raw").status_code == 404
    bad_limit = lab.client.get("/api/messages", params={"limit": "ten"})
    assert bad_limit.status_code == 400
    assert "limit" in error_of(bad_limit)
    assert lab.client.get("/api/messages", params={"limit": 100000}).status_code == 400
    assert lab.client.get("/api/messages", params={"offset": -1}).status_code == 400
    assert lab.client.delete("/api/messages", params={"all": "perhaps"}).status_code == 400
    not_allowed = lab.client.post("/api/messages")
    assert not_allowed.status_code == 405
    assert "POST" in error_of(not_allowed)
    assert set(not_allowed.headers["allow"].split(", ")) == {"GET", "HEAD", "DELETE"}
    assert lab.client.put("/api/messages/X").status_code == 405
    missing = lab.client.get("/api/no-such-route")
    assert missing.status_code == 404
    assert error_of(missing) == "not found"


# -- sessions ----------------------------------------------------------------------------------------------------


def test_sessions_list_and_transcript_with_the_policy_of_each_reply(lab: HttpLab) -> None:
    with lab.smtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("alice@example.test", ["carol@elsewhere.test"], b"Subject: x\r\n\r\nx\r\n")
    wait_for(lambda: lab.client.get("/api/sessions").json()["sessions"] != [], "the session to be listed")
    listing = lab.client.get("/api/sessions").json()
    assert listing["more"] is False
    summary = listing["sessions"][0]
    assert summary["client_address"] == "127.0.0.1"
    assert summary["outcome"] == "554"  # the refused recipient, not the 221 of QUIT
    assert summary["lines"] > 0
    assert "transcript" not in summary

    detail = lab.client.get(f"/api/sessions/{summary['id']}").json()
    refusal = [entry for entry in detail["transcript"] if entry["line"].startswith("554 5.7.1")]
    assert refusal, detail["transcript"]
    assert refusal[0] == {
        "direction": "S",
        "line": "554 5.7.1 <carol@elsewhere.test>: Relay access denied",
        "policy": "relay",
    }
    assert detail["transcript"][0]["line"].startswith("220 ")
    assert {entry["direction"] for entry in detail["transcript"]} >= {"C", "S"}


def test_sessions_paging_search_and_errors(lab: HttpLab) -> None:
    lab.send("s1")
    lab.send("s2", recipients=(f"dave@{DOMAIN}",))
    page = lab.client.get("/api/sessions", params={"limit": 1}).json()
    assert len(page["sessions"]) == 1
    assert page["more"] is True
    found = lab.client.get("/api/sessions", params={"q": "dave@"}).json()["sessions"]
    assert len(found) == 1
    assert found[0]["id"] == page["sessions"][0]["id"]  # the newest session is dave's
    assert lab.client.get("/api/sessions/no-such-session").status_code == 404
    assert "no session" in error_of(lab.client.get("/api/sessions/no-such-session"))
    assert lab.client.get("/api/sessions", params={"limit": "-3"}).status_code == 400
    assert lab.client.delete("/api/sessions").status_code == 405


def test_open_connections_are_listed_live_with_their_transcript_so_far(lab: HttpLab) -> None:
    with lab.smtp() as client:
        client.ehlo("live.example.test")
        live = lab.client.get("/api/sessions", params={"live": "true"}).json()
        assert len(live["sessions"]) == 1
        summary = live["sessions"][0]
        assert (summary["live"], summary["outcome"], summary["ended_at"]) == (True, None, None)
        detail = lab.client.get(f"/api/sessions/{summary['id']}").json()
        assert {"direction": "C", "line": "ehlo live.example.test", "policy": None} in detail["transcript"]
        assert detail["transcript"][-1]["line"].startswith("250 ")  # the last line of the EHLO reply
        assert len(lab.client.get("/api/sessions", params={"live": "1", "q": "LIVE.example"}).json()["sessions"]) == 1
        assert lab.client.get("/api/sessions", params={"live": "1", "q": "elsewhere"}).json()["sessions"] == []
        assert lab.client.get("/api/sessions").json()["sessions"] == []  # not recorded yet
        assert summary["id"] in lab.client.get("/sessions", params={"live": "1"}).text
        assert "still open" in lab.client.get(f"/sessions/{summary['id']}").text
    wait_for(lambda: lab.store.stats().sessions_recorded == 1, "the session to be recorded")
    assert lab.client.get("/api/sessions", params={"live": "true"}).json()["sessions"] == []
    recorded = lab.client.get(f"/api/sessions/{summary['id']}").json()
    assert (recorded["live"], recorded["outcome"]) == (False, "221")


# -- maintenance -------------------------------------------------------------------------------------------------


def test_maintenance_switches_the_greeting_to_421_at_runtime(lab: HttpLab) -> None:
    assert lab.client.get("/api/maintenance").json() == {"enabled": False}
    switched = lab.client.put("/api/maintenance", json={"enabled": True})
    assert switched.status_code == 200
    assert switched.json() == {"enabled": True}
    assert lab.client.get("/api/health").json()["status"] == "maintenance"
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        lab.smtp()
    assert refused.value.smtp_code == 421
    error: object = refused.value.smtp_error  # bytes at run time, str in typeshed
    assert isinstance(error, bytes) and error.startswith(b"4.3.2 ")

    assert lab.client.post("/api/maintenance", json={"enabled": False}).json() == {"enabled": False}
    with lab.smtp() as client:
        assert client.noop()[0] == 250


def test_maintenance_refuses_bad_bodies(lab: HttpLab) -> None:
    not_json = lab.client.put("/api/maintenance", content=b"{enabled: yes")
    assert not_json.status_code == 400
    assert "JSON" in error_of(not_json)
    assert lab.client.put("/api/maintenance", json={"enabled": "yes"}).status_code == 422
    assert lab.client.put("/api/maintenance", json=[True]).status_code == 422
    assert lab.client.put("/api/maintenance", json={}).status_code == 422
    assert lab.client.delete("/api/maintenance").status_code == 405
    assert lab.client.get("/api/maintenance").json() == {"enabled": False}


# -- scenarios when none are configured --------------------------------------------------------------------------


def test_scenario_routes_say_when_scenarios_are_off(lab: HttpLab) -> None:
    for response in (
        lab.client.get("/api/scenarios"),
        lab.client.post("/api/scenarios", json={"name": "x"}),
        lab.client.get("/api/scenarios/some-id"),
        lab.client.patch("/api/scenarios/some-id", json={"enabled": True}),
        lab.client.delete("/api/scenarios/some-id"),
    ):
        assert response.status_code == 404
        assert "not enabled" in error_of(response)
    presets = lab.client.get("/api/scenarios/presets").json()["presets"]
    assert presets["postfix-relay-denied"]["id"] == "postfix-relay-denied"  # listed even without a book


# -- scenarios ---------------------------------------------------------------------------------------------------


@pytest.fixture
def scenario_lab(tmp_path: Path) -> Iterator[HttpLab]:
    lab = HttpLab(tmp_path / "store", scenarios=ScenarioBook())
    try:
        yield lab
    finally:
        lab.stop()


def test_scenarios_are_added_switched_and_removed_at_runtime(scenario_lab: HttpLab) -> None:
    lab = scenario_lab
    assert lab.client.get("/api/scenarios").json() == {"scenarios": []}
    spec = {"id": "busy", "name": "Busy at RCPT", "stage": "rcpt", "reply": "451 4.3.2 Try again later"}
    created = lab.client.post("/api/scenarios", json=spec)
    assert created.status_code == 201
    scenario = created.json()
    assert (scenario["id"], scenario["name"], scenario["enabled"]) == ("busy", "Busy at RCPT", True)
    assert lab.client.get("/api/scenarios/busy").json() == scenario
    assert lab.client.get("/api/scenarios").json() == {"scenarios": [scenario]}

    with lab.smtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail("alice@example.test", [f"bob@{DOMAIN}"], b"Subject: s\r\n\r\ns\r\n")
    assert refused.value.recipients[f"bob@{DOMAIN}"] == (451, b"4.3.2 Try again later")
    wait_for(lambda: lab.store.stats().sessions_recorded == 1, "the session")
    session_id = lab.client.get("/api/sessions").json()["sessions"][0]["id"]
    transcript = lab.client.get(f"/api/sessions/{session_id}").json()["transcript"]
    assert {"direction": "S", "line": "451 4.3.2 Try again later", "policy": "scenario:busy"} in transcript

    switched = lab.client.patch("/api/scenarios/busy", json={"enabled": False})
    assert switched.status_code == 200
    assert switched.json()["enabled"] is False
    lab.send("passes now")
    assert lab.store.count() == 1

    assert lab.client.delete("/api/scenarios/busy").json() == {"deleted": "busy"}
    assert lab.client.get("/api/scenarios").json() == {"scenarios": []}


def test_a_preset_is_added_by_name(scenario_lab: HttpLab) -> None:
    lab = scenario_lab
    presets = lab.client.get("/api/scenarios/presets").json()["presets"]
    assert "postfix-relay-denied" in presets
    assert presets["postfix-relay-denied"]["stage"] == "rcpt"
    created = lab.client.post("/api/scenarios", json={"preset": "postfix-relay-denied"})
    assert created.status_code == 201
    assert created.json()["id"] == "postfix-relay-denied"
    with lab.smtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail("alice@example.test", [f"bob@{DOMAIN}"], b"Subject: p\r\n\r\np\r\n")
    assert refused.value.recipients[f"bob@{DOMAIN}"] == (554, f"5.7.1 <bob@{DOMAIN}>: Relay access denied".encode())


def test_scenario_errors_are_json(scenario_lab: HttpLab) -> None:
    lab = scenario_lab
    wrong = lab.client.post("/api/scenarios", json={"name": "x", "stage": "nowhere", "reply": "250 ok"})
    assert wrong.status_code == 422
    assert "stage" in error_of(wrong)
    unknown_preset = lab.client.post("/api/scenarios", json={"preset": "no-such-preset"})
    assert unknown_preset.status_code == 422
    assert "no preset" in error_of(unknown_preset)
    assert lab.client.post("/api/scenarios", content=b"not json").status_code == 400
    assert lab.client.post("/api/scenarios", json=["a list"]).status_code == 422
    assert lab.client.get("/api/scenarios/nope").status_code == 404
    assert lab.client.delete("/api/scenarios/nope").status_code == 404
    assert lab.client.patch("/api/scenarios/nope", json={"enabled": True}).status_code == 404
    lab.client.post("/api/scenarios", json={"preset": "postfix-ports-busy"})
    assert lab.client.patch("/api/scenarios/postfix-ports-busy", json={"enabled": 1}).status_code == 422
    assert lab.client.put("/api/scenarios/postfix-ports-busy", json={}).status_code == 405
    assert lab.client.get("/api/scenarios").json()["scenarios"][0]["enabled"] is True


# -- metrics -----------------------------------------------------------------------------------------------------


def test_metrics_count_what_a_session_did(lab: HttpLab) -> None:
    assert metric(lab, "smtplens_connections_total") == 0
    lab.send("counted")
    with lab.smtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("alice@example.test", ["eve@elsewhere.test"], b"Subject: y\r\n\r\ny\r\n")
    wait_for(lambda: metric(lab, "smtplens_replies_total", **{"class": "5xx", "code": "554"}) == 1, "the 554")
    assert metric(lab, "smtplens_connections_total") == 2
    assert metric(lab, "smtplens_connections_open") == 0
    assert metric(lab, "smtplens_session_duration_seconds_count") == 2
    assert metric(lab, "smtplens_replies_total", **{"class": "2xx", "code": "220"}) == 2
    assert metric(lab, "smtplens_replies_total", **{"class": "2xx", "code": "221"}) == 2
    assert metric(lab, "smtplens_replies_total", **{"class": "3xx", "code": "354"}) == 1
    assert metric(lab, "smtplens_policy_replies_total", policy="relay") == 1  # the 554 (accepting has no policy)
    assert metric(lab, "smtplens_messages_stored_total") == 1
    stored = lab.store.messages()[0]
    assert metric(lab, "smtplens_message_bytes_total") == stored.size
    assert metric(lab, "smtplens_store_messages") == 1
    assert metric(lab, "smtplens_maintenance") == 0
    lab.client.put("/api/maintenance", json={"enabled": True})
    assert metric(lab, "smtplens_maintenance") == 1


def test_two_servers_keep_their_own_counts(tmp_path: Path) -> None:
    first = HttpLab(tmp_path / "a")
    second = HttpLab(tmp_path / "b")
    try:
        first.send("only here")
        assert metric(first, "smtplens_messages_stored_total") == 1
        assert metric(second, "smtplens_messages_stored_total") == 0
    finally:
        first.stop()
        second.stop()


class BrokenObserver:
    """An observer that fails at every event: the server must log it and carry on."""

    def connection_opened(self, session_id: str, client_address: str) -> None:
        raise RuntimeError("observer down")

    def message_stored(self, session_id: str, size: int) -> None:
        raise RuntimeError("observer down")

    def reply_sent(self, code: str, policy: str | None) -> None:
        raise RuntimeError("observer down")

    def connection_closed(self, session_id: str, client_address: str, duration: float) -> None:
        raise RuntimeError("observer down")


def test_a_failing_observer_never_breaks_a_session(lab: HttpLab, caplog: pytest.LogCaptureFixture) -> None:
    server = SmtpServer(ServerConfig(accepted_domains=frozenset({DOMAIN})), lab.store, observer=BrokenObserver())
    lab.call(server.start("127.0.0.1", 0))
    try:
        host, port = server.address
        with smtplib.SMTP(host, port, timeout=5) as client:
            refused = client.sendmail("alice@example.test", [f"bob@{DOMAIN}"], b"Subject: z\r\n\r\nz\r\n")
        assert refused == {}
        wait_for(lambda: lab.store.count() == 1, "the message")
    finally:
        lab.call(server.shutdown(1))
    assert "the server observer failed: RuntimeError: observer down" in caplog.text


def test_final_replies_counts_a_multiline_reply_once() -> None:
    transcript = [
        ("S", "220 mx ESMTP", None),
        ("C", "EHLO x", None),
        ("S", "250-mx", None),
        ("S", "250 SIZE 100", None),
        ("*", "a note", None),
        ("C", "RCPT TO:<a@b>", None),
        ("S", "554 5.7.1 no", "relay"),
    ]
    assert list(final_replies(transcript)) == [("220", None), ("250", None), ("554", "relay")]


# -- the pages ---------------------------------------------------------------------------------------------------


def test_pages_render_and_escape_what_clients_sent(lab: HttpLab) -> None:
    recipients = (f"bob@{DOMAIN}", "carol@elsewhere.test")  # carol is refused by the relay policy
    lab.send("<script>alert(1)</script>", recipients, body="<img src=x onerror=alert(2)>\n")
    queue_id = lab.client.get("/api/messages").json()["messages"][0]["id"]
    session_id = lab.client.get("/api/sessions").json()["sessions"][0]["id"]
    pages = ["/messages", f"/messages/{queue_id}", "/sessions", f"/sessions/{session_id}", "/scenarios", "/health"]
    for path in pages:
        page = lab.client.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        for name, value in SECURITY_HEADERS.items():
            assert page.headers[name] == value
        assert "<script>alert" not in page.text
        assert "<img src=x" not in page.text
    message_page = lab.client.get(f"/messages/{queue_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message_page
    assert "&lt;img src=x onerror=alert(2)&gt;" in message_page
    transcript = lab.client.get(f"/sessions/{session_id}").text
    assert '<td class="policy">relay</td>' in transcript
    assert lab.client.get("/", follow_redirects=False).headers["location"] == "/messages"


def test_unknown_pages_are_html_errors(lab: HttpLab) -> None:
    page = lab.client.get("/messages/NOSUCHID")
    assert page.status_code == 404
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "no message" in page.text
    assert lab.client.get("/no/such/page").status_code == 404
    assert lab.client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert error_of(lab.client.get("/static/nothing.js")) == "not found"


def test_view_message_survives_broken_mail() -> None:
    view = view_message(b"Subject: =?bogus?q?x?=\r\nContent-Type: text/plain; charset=nonesuch\r\n\r\n\xff\xfe ok\r\n")
    assert view.header("subject") is not None
    assert view.text is not None and view.text.endswith("ok\r\n")
    assert view_message(b"").text == ""
    assert view_message(b"Content-Type: image/png\r\n\r\nxxxx").text is None
    long = view_message(b"Subject: long\r\n\r\n" + b"x" * (TEXT_LIMIT + 10))
    assert long.truncated and long.text is not None and len(long.text) == TEXT_LIMIT
