"""clients.QuietMissSelector: the default selector's answers, without formatting the socket on a miss."""

from __future__ import annotations

import selectors
import socket

import pytest

from stream_monitor.config import KafkaSettings
from stream_monitor.runtime import clients


class CountedSocket(socket.socket):
    reprs = 0

    def __repr__(self) -> str:
        CountedSocket.reprs += 1
        return super().__repr__()


@pytest.mark.parametrize("cls", [selectors.DefaultSelector, clients.QuietMissSelector])
def test_same_answers_as_the_default_selector(cls):
    a, b = socket.socketpair()
    sel = cls()
    try:
        with pytest.raises(KeyError):
            sel.get_key(a)
        key = sel.register(a, selectors.EVENT_READ, "data")
        assert sel.get_key(a) == key and sel.get_key(a.fileno()) == key and sel.get_key(a).data == "data"
        with pytest.raises(KeyError):
            sel.get_key(b)
        with pytest.raises(ValueError):
            sel.get_key(-1)  # an invalid file descriptor, as the base class
        sel.unregister(a)
        with pytest.raises(KeyError):
            sel.get_key(a)
    finally:
        sel.close()
        a.close()
        b.close()
    with pytest.raises(RuntimeError, match="closed"):
        sel.get_key(a)


def test_a_miss_formats_nothing():
    sock = CountedSocket(socket.AF_INET, socket.SOCK_STREAM)
    sel, default = clients.QuietMissSelector(), selectors.DefaultSelector()
    try:
        with pytest.raises(KeyError):
            sel.get_key(sock)
        assert CountedSocket.reprs == 0
        with pytest.raises(KeyError):
            default.get_key(sock)
        assert CountedSocket.reprs > 0  # what the default does, and what it costs
    finally:
        sel.close()
        default.close()
        sock.close()


def test_every_client_gets_it():
    assert clients.security_options(KafkaSettings())["selector"] is clients.QuietMissSelector
