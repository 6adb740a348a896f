"""kafka-python's receive path, for the monitor's own clients: bigger socket reads and one copy of a response, not three.

kafka-python 3.0.12 reads a connection 4 KiB at a time (``KafkaTCPTransport._sock_recv``) and
joins the pieces; its parser (``KafkaProtocol``) copies them into a frame-sized ``KafkaBytes``,
then hands the frame to the response decoder through ``KafkaBytes.read()``, which copies it twice
more (``bytes(self[start:end])``: a slice, then its bytes) before ``ApiMessage.decode`` wraps it in a
``memoryview``. A fetch response is up to ``fetch_max_bytes`` (the monitor's consumer: 4 partitions
x 8 MiB), and the client's network thread holds the GIL through each copy (every one a fresh
allocation whose pages fault in): in a py-spy ``--gil`` profile of bench row (e0) those copies were
~8 % of the process's GIL time, all taken from the loop's thread.

:func:`install` (called for every client ``clients.py`` builds; idempotent) changes two things, for
connections whose ``selector`` is one of ours (:data:`MARK` set on its class: ``clients.QuietMissSelector``)
and on the verified kafka-python versions only (``kafka_compat.VERIFIED_RANGE``); every other
client in the process (the benchmark's bare consumer, row (a), is one) keeps the stock code:

- a plain TCP connection is read :data:`RECV_BYTES` at a time (a TLS one keeps its own reads);
- a response decoded by ``ApiMessage.decode`` reads its frame as a ``memoryview`` of the
  ``KafkaBytes`` (which the parser drops right after: nothing writes to it again); the decoder
  copies each records blob out as ``bytes``, as before. Any other response class (raw SASL bytes;
  ``ApiVersionsResponse``, which has its own ``decode``) reads ``bytes`` as ever, and so does the
  parser's decode-error path (a ``seek`` ends the view).

Same bytes decoded, same responses (``tests/runtime/test_receive.py``, against a broker too). Bare
polling of the benchmark's 200k records, stock against changed in 8 alternating rounds each (medians,
records/s): 256 KiB reads alone 93.6k -> 96.9k; with the frame as a view too 102.5k -> 117.8k (one copy
instead of two, not a view: 92.0k -> 103.6k). ``run`` (bench row (e0)): BENCHMARKS.md.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import errors
from kafka.net.connection import KafkaConnection
from kafka.net.transport import KafkaTCPTransport
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.frame import KafkaBytes
from kafka.protocol.parser import KafkaProtocol

from stream_monitor.runtime.kafka_compat import version_verified

log = logging.getLogger("kafka.net.transport")  # kafka-python's own logger for what its loop logs
RECV_BYTES = 256 * 1024  # per recv() of a plain TCP connection (kafka-python: 4 KiB)
MARK = "stream_monitor_receive"  # a selector class with this attribute true: its client's connections are read here

_STOCK_RECV = KafkaTCPTransport._sock_recv
_STOCK_MADE = KafkaConnection.connection_made
_API_DECODE = ApiMessage.decode.__func__  # type: ignore[attr-defined]


def ours(net: Any) -> bool:
    """Is ``net`` (a client's ``NetworkSelector``) one of the monitor's clients' (its selector's class has :data:`MARK`)?"""
    return bool(getattr(getattr(net, "_selector", None), MARK, False))


class ViewBytes(KafkaBytes):  # type: ignore[misc]
    """A received frame whose remainder reads as a view (``read()``), not as a copy.

    Only the decoder's one read of the rest is a view: a ``seek`` (the parser's decode-error path
    rewinds and logs the frame's bytes) makes it a plain ``KafkaBytes`` again.
    """

    def read(self, nbytes: int | None = None) -> Any:
        """The next ``nbytes`` as kafka-python reads them; the rest of the frame (``None``) as a ``memoryview``."""
        if nbytes is not None:
            return KafkaBytes.read(self, nbytes)
        start = self._idx
        self._idx = len(self)
        return memoryview(self)[start:]

    def seek(self, idx: int) -> None:
        """kafka-python's ``seek``; reads from then on are its own (``bytes``)."""
        self.__class__ = KafkaBytes
        KafkaBytes.seek(self, idx)


class ViewProtocol(KafkaProtocol):  # type: ignore[misc]
    """The parser of one of our connections: a response that ``ApiMessage.decode`` reads gets a :class:`ViewBytes`."""

    def _process_response(self, read_buffer: Any) -> Any:
        if self.in_flight_requests and type(read_buffer) is KafkaBytes:
            cls = self.in_flight_requests[0].get_response_class()
            if isinstance(cls, type) and getattr(getattr(cls, "decode", None), "__func__", None) is _API_DECODE:
                read_buffer.__class__ = ViewBytes
        return super()._process_response(read_buffer)


def sock_recv(transport: Any) -> tuple[bytes, Any]:
    """``KafkaTCPTransport._sock_recv``: kafka-python's loop, :data:`RECV_BYTES` at a time on our connections.

    A transport closed before its read event is served (its socket ``None``: the connection was closed by
    another callback of the same turn) gets the connection error its send would, without kafka-python's
    logged ``AttributeError`` traceback (seen once in a benchmark run of 2026-12-04, as an ERROR line).
    """
    if type(transport) is not KafkaTCPTransport or not ours(transport._net):
        return _STOCK_RECV(transport)
    if transport._sock is None:
        return b"", errors.KafkaConnectionError("Connection closed during receive")
    got: list[bytes] = []
    err = None
    while True:
        try:
            data = transport._sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            break
        except BaseException as exc:  # noqa: BLE001 - as kafka-python: the connection closes with the error
            log.exception("%s: Error receiving network data closing socket", transport)
            err = errors.KafkaConnectionError(exc)
            break
        if not data:
            log.error("%s: socket disconnected", transport)
            err = errors.KafkaConnectionError("socket disconnected")
            break
        got.append(data)
    return (got[0] if len(got) == 1 else b"".join(got)), err


def connection_made(connection: Any, transport: Any) -> Any:
    """``KafkaConnection.connection_made``, then our connection's parser made a :class:`ViewProtocol`."""
    out = _STOCK_MADE(connection, transport)
    if type(connection.parser) is KafkaProtocol and ours(connection.net):
        connection.parser.__class__ = ViewProtocol
    return out


def install() -> bool:
    """Install both (idempotent) on a verified kafka-python; returns whether they are installed."""
    if not version_verified():
        return False
    KafkaTCPTransport._sock_recv = sock_recv
    KafkaConnection.connection_made = connection_made
    return True
