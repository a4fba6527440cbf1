"""es.wire's HTTP/1.1 answer parsing, fed the bytes of an answer in arbitrary pieces (a pure parser test).

Behaviour against a real engine is covered by the search, health, security and profile tests, which run on it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escli.es.wire import Answer, BrokenAnswer, Connection, TooLarge, inflate


class FakeSocket(asyncio.Transport):
    """Stands in for the socket only: records what was written; the bytes in are fed by the test."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: Any) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


def chunked(body: bytes, sizes: list[int]) -> bytes:
    out, pos = bytearray(), 0
    for n in sizes:
        if pos >= len(body):
            break
        piece = body[pos:pos + max(1, n)]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        pos += len(piece)
    if pos < len(body):
        out += f"{len(body) - pos:x}\r\n".encode() + body[pos:] + b"\r\n"
    return bytes(out + b"0\r\n\r\n")


def exchange(raw: bytes, cuts: list[int], head_only: bool = False,
             max_answer: int = 2**20) -> tuple[Answer, Connection, FakeSocket]:
    async def run() -> tuple[Answer, Connection, FakeSocket]:
        conn, sock = Connection(max_answer), FakeSocket()
        conn.connection_made(sock)
        task = asyncio.ensure_future(conn.exchange(b"GET / HTTP/1.1\r\n\r\n", head_only=head_only))
        await asyncio.sleep(0)
        pos = 0
        for cut in sorted(set(c % (len(raw) + 1) for c in cuts)):
            conn.data_received(raw[pos:cut])
            pos = cut
        if pos < len(raw):
            conn.data_received(raw[pos:])
        return await task, conn, sock

    return asyncio.run(run())


@given(body=st.binary(max_size=3000), sizes=st.lists(st.integers(1, 700), max_size=8),
       cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_chunked_answers_in_any_pieces(body: bytes, sizes: list[int], cuts: list[int]) -> None:
    raw = b"HTTP/1.1 200 OK\r\nX-elastic-product: Elasticsearch\r\nTransfer-Encoding: chunked\r\n\r\n" + \
        chunked(body, sizes)
    answer, conn, _ = exchange(raw, cuts)
    assert answer.status == 200 and answer.body == body and answer.keep_alive and not conn.closed
    assert answer.headers["x-elastic-product"] == "Elasticsearch"  # values keep their case
    assert answer.done_at >= answer.sent_at


@given(body=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_content_length_answers_in_any_pieces(body: bytes, cuts: list[int]) -> None:
    raw = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: " + \
        str(len(body)).encode() + b"\r\n\r\n" + body
    answer, _, _ = exchange(raw, cuts)
    assert answer.status == 404 and answer.body == body


def test_connection_close_and_interim_answers() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    answer, conn, _ = exchange(raw, [5, 30])
    assert answer.status == 200 and answer.body == b"{}" and not answer.keep_alive and conn.closed


def test_a_head_answer_has_no_body() -> None:
    answer, conn, _ = exchange(b"HTTP/1.1 200 OK\r\ncontent-length: 120\r\n\r\n", [], head_only=True)
    assert answer.body == b"" and answer.keep_alive and not conn.closed


def test_an_answer_that_is_not_http_fails_the_exchange() -> None:
    try:
        exchange(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", [])
    except ValueError as exc:
        assert "not an HTTP answer" in str(exc)
    else:
        raise AssertionError("expected ValueError")


def test_closed_before_the_answer_raises_connection_reset() -> None:
    async def run() -> None:
        conn, sock = Connection(), FakeSocket()
        conn.connection_made(sock)
        task = asyncio.ensure_future(conn.exchange(b"GET / HTTP/1.1\r\n\r\n"))
        await asyncio.sleep(0)
        conn.connection_lost(None)
        try:
            await task
        except ConnectionResetError:
            return
        raise AssertionError("expected ConnectionResetError")

    asyncio.run(run())


def test_timeout_fails_the_exchange_and_closes() -> None:
    async def run() -> None:
        conn, sock = Connection(), FakeSocket()
        conn.connection_made(sock)
        try:
            await conn.exchange(b"GET / HTTP/1.1\r\n\r\n", timeout=0.01)
        except TimeoutError:
            assert conn.closed and sock.closed
            return
        raise AssertionError("expected TimeoutError")

    asyncio.run(run())


def test_an_answer_for_a_request_cancelled_mid_callback_is_dropped_quietly() -> None:
    """Ctrl-C's handler can cancel the awaiting task inside data_received (between two bytecodes)."""

    class CancelledMidway(Connection):
        def _advance(self) -> None:
            assert self._waiter is not None
            self._waiter.cancel()  # what cancelling the task does to the future it awaits
            super()._advance()

    async def run() -> None:
        conn, sock = CancelledMidway(), FakeSocket()
        conn.connection_made(sock)
        task = asyncio.ensure_future(conn.exchange(b"GET / HTTP/1.1\r\n\r\n"))
        await asyncio.sleep(0)
        conn.data_received(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")  # must not raise
        try:
            await task
        except asyncio.CancelledError:
            return
        raise AssertionError("expected the exchange to be cancelled")

    asyncio.run(run())


def test_gzip_answers_are_decoded_and_warnings_flagged_with_their_case() -> None:
    import gzip

    from escli.es.transport import warning_texts

    body = b'{"took":1,"hits":{"hits":[]}}'
    packed = gzip.compress(body)
    raw = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nWarning: 299 Elasticsearch-9.5.4-abc \"[Old] Is "
           b"Deprecated\" \"Tue, 01 Dec 2026 00:00:00 GMT\"\r\nWarning: 299 Elasticsearch-9.5.4-abc \"two\"\r\n"
           b"Content-Length: %d\r\n\r\n" % len(packed)) + packed
    answer, _, _ = exchange(raw, [17, 90])
    assert answer.body == body and answer.warned
    assert warning_texts(answer.header_values("warning")) == ["[Old] Is Deprecated", "two"]
    assert answer.header("content-encoding") == "gzip"
    plain, _, _ = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", [])
    assert not plain.warned and plain.header("warning") is None


# -- the answer bound and broken framing (issue 35) ----------------------------------------------------------------

def test_a_content_length_past_the_bound_fails_before_its_bytes_and_closes() -> None:
    async def run() -> None:
        conn, sock = Connection(1000), FakeSocket()
        conn.connection_made(sock)
        task = asyncio.ensure_future(conn.exchange(b"GET / HTTP/1.1\r\n\r\n"))
        await asyncio.sleep(0)
        conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000000\r\n\r\n")
        with pytest.raises(TooLarge) as err:
            await task
        assert err.value.limit == 1000 and sock.closed and conn.closed

    asyncio.run(run())


@given(cuts=st.lists(st.integers(0, 5000), max_size=12))
def test_a_chunked_body_past_the_bound_fails_and_holds_no_more_than_it(cuts: list[int]) -> None:
    body = b"x" * 3000
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, [100] * 30)
    with pytest.raises(TooLarge):
        exchange(raw, cuts, max_answer=2999)
    answer, _, _ = exchange(raw, cuts, max_answer=3000)  # exactly the bound is an answer
    assert answer.body == body


def test_a_chunk_header_announcing_more_than_the_bound_fails_at_once() -> None:
    with pytest.raises(TooLarge):
        exchange(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\nabc", [], max_answer=1000)


def test_a_body_until_close_past_the_bound_fails() -> None:
    with pytest.raises(TooLarge):
        exchange(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"y" * 2000, [40, 900], max_answer=1000)


def test_gzip_is_inflated_within_the_bound_member_by_member() -> None:
    import gzip

    member = gzip.compress(bytes(600))
    assert inflate(member * 2, 1200) == bytes(1200)  # two members, exactly the bound
    with pytest.raises(TooLarge):
        inflate(member * 3, 1200)
    with pytest.raises(TooLarge):  # one member, never inflated past the bound + 1 (max_length)
        inflate(gzip.compress(bytes(10**7)), 1000)
    with pytest.raises(BrokenAnswer, match="cut short"):
        inflate(member[:-12], 1200)
    with pytest.raises(BrokenAnswer, match="does not inflate"):
        inflate(b"\x1f\x8b" + b"garbage" * 5, 1200)
    packed = gzip.compress(bytes(5000))
    raw = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed) + packed
    with pytest.raises(TooLarge):
        exchange(raw, [], max_answer=4999)


@pytest.mark.parametrize(("raw", "said"), [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", "a bad chunk header: b'zz'"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n{}\r\n0\r\n\r\n", "a bad chunk header"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n", "a bad chunk header"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n{}", "a Content-Length that is not a length: b'-5'"),
    (b"HTTP/1.1 abc Nonsense\r\nContent-Length: 2\r\n\r\n{}", "something that is not an HTTP answer"),
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", "headers larger than 64 KiB"),
    (b"HTTP/1.1 200 OK\r\n" + b"X-More: m\r\n" * 7000, "headers larger than 64 KiB"),
])
def test_broken_framing_is_said_as_what_came_back(raw: bytes, said: str) -> None:
    with pytest.raises(BrokenAnswer) as err:
        exchange(raw, [len(raw) // 2])
    assert said in str(err.value)


def test_bytes_then_the_end_without_a_status_line_is_not_http() -> None:
    async def run() -> None:
        conn, sock = Connection(), FakeSocket()
        conn.connection_made(sock)
        task = asyncio.ensure_future(conn.exchange(b"GET / HTTP/1.1\r\n\r\n"))
        await asyncio.sleep(0)
        conn.data_received(b'{"took":1}')  # HTTP/0.9: the body alone
        conn.connection_lost(None)
        with pytest.raises(BrokenAnswer, match="not an HTTP answer"):
            await task

    asyncio.run(run())
