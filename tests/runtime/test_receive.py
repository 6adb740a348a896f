"""runtime/receive.py: our clients' connections read in big pieces and decode frames through views, with the same results.

The parser tests feed the same framed responses, cut into the same drawn pieces, to kafka-python's
own parser and to ours and compare what comes out; the transport tests read a socket both ways;
the broker test reads one topic with a client of ours and with a stock ``KafkaConsumer``.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaProtocolError
from kafka.net.connection import KafkaConnection
from kafka.net.transport import KafkaTCPTransport
from kafka.protocol.consumer import FetchRequest, FetchResponse
from kafka.protocol.metadata import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.parser import KafkaProtocol

from stream_monitor.config import KafkaSettings
from stream_monitor.runtime import clients, kafka_compat, receive

VERSIONS = (4, 11, 12, 13, 16)  # the oldest; the last before flexible headers and tagged fields; with them; topic ids; node endpoints


def fetch_frame(correlation_id: int, blobs: list[bytes | None], version: int = 4) -> bytes:
    """A framed FetchResponse of ``version`` whose partition ``i`` holds ``blobs[i]`` as its records (and, from v12, a
    tagged diverging epoch on partition 0)."""
    R = FetchResponse[version]
    P = R.FetchableTopicResponse.PartitionData
    tagged = lambda i: {"diverging_epoch": P.EpochEndOffset(version=version, epoch=3, end_offset=7)} if version >= 12 and i == 0 else {}  # noqa: E731
    parts = [
        P(version=version, partition_index=i, error_code=0, high_watermark=10, last_stable_offset=10, aborted_transactions=None, records=blob, **tagged(i))
        for i, blob in enumerate(blobs)
    ]
    topic = {"topic_id": uuid.UUID(int=12345)} if version >= 13 else {"topic": "t"}
    resp = R(throttle_time_ms=0, responses=[R.FetchableTopicResponse(version=version, partitions=parts, **topic)])
    resp.with_header(correlation_id=correlation_id)
    return bytes(resp.encode(header=True, framed=True))


def versions_frame(correlation_id: int) -> bytes:
    resp = ApiVersionsResponse[0](error_code=0, api_keys=[(1, 0, 12), (0, 3, 9)])
    resp.with_header(correlation_id=correlation_id)
    return bytes(resp.encode(header=True, framed=True))


def parse(parser: KafkaProtocol, frames_of: Any, cuts: list[int], version: int = 4) -> list[Any]:
    """Send two requests (a fetch of ``version``, an ApiVersions) on ``parser`` and feed their responses' bytes cut at ``cuts``."""
    fetch_id = parser.send_request(FetchRequest[version](replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1, isolation_level=0, topics=[]))
    versions_id = parser.send_request(ApiVersionsRequest[0]())
    data = frames_of(fetch_id, versions_id)
    out: list[Any] = []
    at = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts} | {len(data)}):
        out += parser.receive_bytes(data[at:cut])
        at = cut
    return out


def view_parser() -> KafkaProtocol:
    parser = KafkaProtocol(client_id="c")
    parser.__class__ = receive.ViewProtocol
    return parser


blobs = st.lists(st.one_of(st.none(), st.binary(max_size=64), st.integers(0, 3_000_000).map(lambda n: bytes(range(256)) * (n // 256) + b"x" * (n % 256))),
                 min_size=0, max_size=4)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blobs=blobs, cuts=st.lists(st.integers(0, 10_000_000), max_size=6), version=st.sampled_from(VERSIONS))
def test_our_parser_gives_kafka_pythons_responses(blobs: list[bytes | None], cuts: list[int], version: int) -> None:
    def frames(fetch_id: int, versions_id: int) -> bytes:
        return fetch_frame(fetch_id, blobs, version) + versions_frame(versions_id)

    stock = parse(KafkaProtocol(client_id="c"), frames, cuts, version)
    ours = parse(view_parser(), frames, cuts, version)
    assert ours == stock and len(ours) == 2
    for got, want in zip(ours[0][1].responses[0].partitions, stock[0][1].responses[0].partitions):
        assert type(got.records) is type(want.records) and got.records == want.records  # bytes (or None), copied out of the frame


def test_our_parser_reads_api_message_frames_as_views_and_other_responses_as_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(receive.ViewBytes, "read", lambda self, n=None: seen.append("view" if n is None else "n") or receive.KafkaBytes.read(self, n))
    parse(view_parser(), lambda f, v: fetch_frame(f, [b"abc"]) + versions_frame(v), [])
    assert seen.count("view") == 1  # the fetch's; ApiVersionsResponse has a decode of its own (a v0 fallback): stock bytes

    class Raw:  # a raw SASL v0 exchange's response (kafka.protocol.sasl.SaslBytesResponse): its class is itself
        def __init__(self, correlation_id: int) -> None:
            self.correlation_id = correlation_id

        def parse_header(self, read_buffer: Any) -> Any:
            return self

        def decode(self, read_buffer: Any) -> Any:
            self.auth_bytes = read_buffer.read()
            return self

        def get_response_class(self) -> Any:
            return self

    parser = view_parser()
    parser.in_flight_requests.append(Raw(0))
    (_, got), = parser.receive_bytes(b"\x00\x00\x00\x03sec")
    assert type(got.auth_bytes) is bytes and got.auth_bytes == b"sec"


def test_a_frame_that_does_not_decode_is_logged_as_kafka_python_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    logged = []
    for parser in (KafkaProtocol(client_id="c"), view_parser()):
        fetch_id = parser.send_request(FetchRequest[4](replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1, isolation_level=0, topics=[]))
        body = fetch_id.to_bytes(4, "big") + b"\x00\x00\x00\x00\x00\x00\x00\x01"  # a fetch response cut short: one topic promised, none there
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="kafka.protocol.parser"), pytest.raises(KafkaProtocolError, match="Unable to decode"):
            parser.receive_bytes(len(body).to_bytes(4, "big") + body)
        (record,) = [r for r in caplog.records if "Unable to decode" in r.getMessage()]
        logged.append(record.args[-1])
    assert type(logged[1]) is bytes and logged[1] == logged[0] == body  # the frame's bytes, not a view of them


class Recorder:
    """A socket whose ``recv`` sizes are recorded."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.sizes = sock, []

    def recv(self, n: int) -> bytes:
        self.sizes.append(n)
        return self.sock.recv(n)

    def __getattr__(self, name: str) -> Any:  # (what the transport's log line reads: getpeername)
        return getattr(self.sock, name)


class Marked(selectors.DefaultSelector):  # type: ignore[misc, valid-type]
    stream_monitor_receive = True


@pytest.mark.parametrize("selector, size", [(Marked, receive.RECV_BYTES), (selectors.DefaultSelector, 4096)])
def test_our_connections_read_big_pieces_and_others_stay_stock(selector: type, size: int) -> None:
    assert receive.install()
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        payload = bytes(range(256)) * 2048  # 512 KiB
        sender = threading.Thread(target=b.sendall, args=(payload,), daemon=True)
        sender.start()
        rec = Recorder(a)
        sel = selector()
        transport = KafkaTCPTransport(SimpleNamespace(_selector=sel), rec)
        got = b""
        deadline = time.monotonic() + 60
        while len(got) < len(payload) and time.monotonic() < deadline:
            data, err = transport._sock_recv()  # (b"" while nothing is there: non-blocking)
            assert err is None
            got += data
        sender.join(60)
        assert got == payload
        assert set(rec.sizes) == {size}
        b.close()
        data, err = transport._sock_recv()  # the peer gone: kafka-python's error, either way
        assert data == b"" and "socket disconnected" in str(err)
        if selector is Marked:  # closed before its read is served: an error, no traceback
            transport._sock = None
            data, err = transport._sock_recv()
            assert data == b"" and "closed during receive" in str(err)
        sel.close()
    finally:
        a.close()
        b.close()


def test_installed_only_on_the_verified_kafka_python(monkeypatch: pytest.MonkeyPatch) -> None:
    assert kafka_compat.version_verified() and receive.install()
    assert KafkaTCPTransport._sock_recv is receive.sock_recv and KafkaConnection.connection_made is receive.connection_made
    monkeypatch.setattr(KafkaTCPTransport, "_sock_recv", receive._STOCK_RECV)  # (as before an install; put back after the test)
    monkeypatch.setattr(KafkaConnection, "connection_made", receive._STOCK_MADE)
    monkeypatch.setattr(receive, "version_verified", lambda: False)
    assert not receive.install()
    assert KafkaTCPTransport._sock_recv is receive._STOCK_RECV and KafkaConnection.connection_made is receive._STOCK_MADE
    assert clients.QuietMissSelector.stream_monitor_receive is True  # every client clients.py builds is one of ours


def _parsers(consumer: KafkaConsumer) -> set[type]:
    return {type(conn.parser) for conn in consumer._client._manager._conns.values() if conn.parser is not None}


@pytest.mark.kafka
def test_a_client_of_ours_reads_what_a_stock_consumer_reads(kafka_bootstrap: str, topic_factory: Any) -> None:
    topic = topic_factory(partitions=2, prefix="receive")
    values = [f"{i}:".encode() + bytes([i % 251]) * (i * 997 % 300_000) for i in range(120)] + [None, b""]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=8 * 1024 * 1024)
    for i, v in enumerate(values):
        producer.send(topic, value=v, key=str(i).encode(), partition=i % 2, headers=[("h", bytes([i % 7]))])
    producer.flush(60)
    producer.close()
    tps = [TopicPartition(topic, p) for p in range(2)]

    def read(consumer: KafkaConsumer) -> list[tuple[Any, ...]]:
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[tuple[Any, ...]] = []
        for _ in range(600):
            for recs in consumer.poll(timeout_ms=100).values():
                out += [(r.partition, r.offset, r.timestamp, r.key, r.value, r.headers) for r in recs]
            if len(out) >= len(values):
                break
        return sorted(out, key=lambda r: (r[0], r[1]))

    mine = clients.plain_consumer(KafkaSettings(bootstrap_servers=kafka_bootstrap), f"receive-{uuid.uuid4().hex[:6]}")
    stock = KafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                          fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=16 * 1024 * 1024)  # fmt: skip
    try:
        got, want = read(mine), read(stock)
        assert len(want) == len(values) and got == want
        assert _parsers(mine) == {receive.ViewProtocol} and _parsers(stock) == {KafkaProtocol}
    finally:
        mine.close()
        stock.close()
