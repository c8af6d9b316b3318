"""``NullStore``: the server runs on it like on the durable store, and it keeps nothing but counts."""

from __future__ import annotations

import asyncio

from smtplens.server.net import ServerConfig, SmtpServer
from smtplens.server.protocol import SessionConfig
from smtplens.server.store_files import is_queue_id
from smtplens.server.store_null import MessageSink, NullStore


def test_null_store_hands_out_queue_ids_and_counts() -> None:
    async def main() -> tuple[str, str, NullStore]:
        store = NullStore()
        envelope = {"mail_from": "a@example.test", "recipients": ["b@example.test"]}
        first = await store.store(envelope, b"Subject: x\r\n\r\nbody\r\n")
        second = await store.store(envelope, b"")
        await store.record_session("s1", client_address="127.0.0.1", started_at=0.0, transcript=[("S", "220", None)])
        await store.aclose()
        return first, second, store

    first, second, store = asyncio.run(main())
    assert is_queue_id(first) and is_queue_id(second) and first < second  # the durable store's format and order
    assert (store.messages, store.octets, store.sessions) == (2, 20, 1)


def test_server_delivers_onto_a_null_store() -> None:
    async def main() -> tuple[list[bytes], NullStore]:
        store = NullStore()
        sink: MessageSink = store  # what SmtpServer takes
        server = SmtpServer(
            ServerConfig(session=SessionConfig(hostname="mx.lab.test"), accepted_domains=frozenset({"lab.test"})),
            sink,
        )
        await server.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.address)
        writer.write(
            b"EHLO c.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@lab.test>\r\nDATA\r\n"
            b"Subject: null\r\n\r\nhello\r\n.\r\nQUIT\r\n"
        )
        lines: list[bytes] = []
        while line := await asyncio.wait_for(reader.readline(), 10):
            lines.append(line)
        writer.close()
        await server.shutdown(1)
        return lines, store

    lines, store = asyncio.run(main())
    replies = [line[:9] for line in lines if line[3:4] == b" "]
    assert replies[-3:] == [b"354 End d", b"250 2.0.0", b"221 2.0.0"]
    assert b"Ok: queued as " in lines[-2]
    assert (store.messages, store.sessions) == (1, 1)
