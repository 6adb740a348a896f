"""The compiled pass of :mod:`stream_monitor.core.scan`: a batch of records matched against one shape, their values read into arrays.

:func:`scan_python` is the kernel's source (plain Python, compiled by numba with ``core/kernels.py``'s
:func:`~stream_monitor.core.kernels.compile_kernel`: on the first call, cached on disk); :func:`same_texts_python`
checks that texts of one hash are one text. Without numba (or with ``STREAM_MONITOR_NO_JIT``) :func:`kernel` is None
and nothing is scanned: every record is read the usual way.

>>> import numpy as np
>>> raw = b'{"x":-1234567890.12345,"c":"ab"}'
>>> lit, bounds = np.frombuffer(b'{"x":,"c":}', dtype=np.uint8), np.array([0, 5, 10, 11])
>>> kinds, f, i, a, b = np.zeros((1, 2), np.int8), np.zeros((1, 2)), np.zeros((1, 2), np.int64), np.zeros((1, 2), np.int64), np.zeros((1, 2), np.int64)
>>> ok = np.zeros(1, np.uint8)
>>> scan_python(np.frombuffer(raw, np.uint8), np.array([0]), np.array([len(raw)]), lit, bounds, kinds, f, i, a, b, ok, POW10)
1
>>> kinds.tolist(), float(f[0, 0]), raw[a[0, 1]:b[0, 1]], int(i[0, 1]) == 97 * 31 + 98
([[5, 6]], -1234567890.12345, b'ab', True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stream_monitor.core.kernels import compile_kernel, jit_enabled

NULL, FALSE, TRUE, INT, FLOAT, STR, FLOATPY = 1, 2, 3, 4, 5, 6, 7  # a value's kind, as the kernel writes it
POW10 = np.array([10.0**k for k in range(23)])  # (exact powers of ten: the one-operation conversion's)


def scan_python(buf: Any, starts: Any, ends: Any, lit: Any, bounds: Any, kinds: Any, fvals: Any, ivals: Any, spa: Any, spb: Any, ok: Any, pow10: Any) -> int:  # noqa: C901
    """Match records ``buf[starts[r]:ends[r]]`` against one template (``lit`` cut at ``bounds``); the kernel's source.

    For each record r and value s: ``kinds[r, s]`` its kind (:data:`NULL` ... :data:`FLOATPY`: a float left to Python),
    ``fvals``/``ivals`` a float's or an integer's value (a text's hash), ``spa``/``spb`` where its text lies (a
    text's without the quotes); ``ok[r]`` 1 when the whole record matched. Returns how many did.
    """
    n = starts.shape[0]
    nslots = bounds.shape[0] - 2
    matched = 0
    for r in range(n):
        p = starts[r]
        e = ends[r]
        good = True
        for s in range(nslots + 1):
            a = bounds[s]
            length = bounds[s + 1] - a
            if p + length > e:
                good = False
                break
            for k in range(length):
                if buf[p + k] != lit[a + k]:
                    good = False
                    break
            if not good:
                break
            p += length
            if s == nslots:
                break
            if p >= e:
                good = False
                break
            c = buf[p]
            spa[r, s] = p
            if c == 34:  # a text: no escape, no control character, ASCII only (else the usual reading)
                q = p + 1
                h = 0  # a polynomial hash mod 2**54 (in ivals: distinct texts told apart cheaply, then checked byte for byte)
                while q < e:
                    d = buf[q]
                    if d == 34:
                        break
                    if d == 92 or d < 32 or d >= 128:
                        good = False
                        break
                    h = (h * 31 + int(d)) & 0x3FFFFFFFFFFFFF
                    q += 1
                if not good or q >= e:
                    good = False
                    break
                spa[r, s] = p + 1
                spb[r, s] = q
                ivals[r, s] = h
                kinds[r, s] = STR
                p = q + 1
            elif c == 110:
                if p + 4 <= e and buf[p + 1] == 117 and buf[p + 2] == 108 and buf[p + 3] == 108:
                    kinds[r, s] = NULL
                    p += 4
                else:
                    good = False
                    break
            elif c == 116:
                if p + 4 <= e and buf[p + 1] == 114 and buf[p + 2] == 117 and buf[p + 3] == 101:
                    kinds[r, s] = TRUE
                    p += 4
                else:
                    good = False
                    break
            elif c == 102:
                if p + 5 <= e and buf[p + 1] == 97 and buf[p + 2] == 108 and buf[p + 3] == 115 and buf[p + 4] == 101:
                    kinds[r, s] = FALSE
                    p += 5
                else:
                    good = False
                    break
            else:  # a number, by JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
                q = p
                neg = False
                if c == 45:
                    neg = True
                    q += 1
                if q >= e:
                    good = False
                    break
                d = buf[q]
                m = 0
                nd = 0  # significant digits taken into m
                big = False  # digits beyond 19: not in m
                exp10 = 0
                if d == 48:
                    q += 1
                elif 49 <= d <= 57:
                    while q < e and 48 <= buf[q] <= 57:
                        if nd < 19:
                            m = m * 10 + (int(buf[q]) - 48)
                            nd += 1
                        else:
                            big = True
                            exp10 += 1
                        q += 1
                else:
                    good = False
                    break
                isfloat = False
                if q < e and buf[q] == 46:
                    isfloat = True
                    q += 1
                    f0 = q
                    while q < e and 48 <= buf[q] <= 57:
                        dd = int(buf[q]) - 48
                        if nd == 0 and dd == 0:
                            exp10 -= 1
                        elif nd < 19:
                            m = m * 10 + dd
                            nd += 1
                            exp10 -= 1
                        else:
                            big = True
                        q += 1
                    if q == f0:
                        good = False
                        break
                if q < e and (buf[q] == 101 or buf[q] == 69):
                    isfloat = True
                    q += 1
                    eneg = False
                    if q < e and (buf[q] == 43 or buf[q] == 45):
                        eneg = buf[q] == 45
                        q += 1
                    x0 = q
                    x = 0
                    while q < e and 48 <= buf[q] <= 57:
                        if x < 100000:
                            x = x * 10 + (int(buf[q]) - 48)
                        q += 1
                    if q == x0:
                        good = False
                        break
                    exp10 += -x if eneg else x
                spb[r, s] = q
                if not isfloat:
                    if big or nd > 18:  # 19 digits or more: the usual reading decides (64-bit range)
                        good = False
                        break
                    kinds[r, s] = INT
                    ivals[r, s] = -m if neg else m
                elif m == 0 and not big:
                    kinds[r, s] = FLOAT
                    fvals[r, s] = -0.0 if neg else 0.0
                elif not big and m <= 9007199254740992 and -22 <= exp10 <= 22:
                    v = float(m)
                    v = v * pow10[exp10] if exp10 >= 0 else v / pow10[-exp10]
                    kinds[r, s] = FLOAT
                    fvals[r, s] = -v if neg else v
                else:
                    kinds[r, s] = FLOATPY
                p = q
        if good and p == e:
            ok[r] = 1
            matched += 1
        else:
            ok[r] = 0
    return matched


def same_texts_python(buf: Any, spa: Any, spb: Any, first: Any, codes: Any) -> bool:
    """Whether every text ``buf[spa[i]:spb[i]]`` equals the text at ``first[codes[i]]`` (the first of its hash); the kernel's source."""
    for i in range(spa.shape[0]):
        j = first[codes[i]]
        a, b, c = spa[i], spb[i], spa[j]
        if b - a != spb[j] - c:
            return False
        for k in range(b - a):
            if buf[a + k] != buf[c + k]:
                return False
    return True


_SAME_SIGNATURE = "boolean(Array(uint8, 1, 'C', readonly=True), int64[::1], int64[::1], int64[::1], int64[::1])"
_SIGNATURE = "int64(Array(uint8, 1, 'C', readonly=True), int64[::1], int64[::1], Array(uint8, 1, 'C', readonly=True), int64[::1], int8[:, ::1], float64[:, ::1], int64[:, ::1], int64[:, ::1], int64[:, ::1], uint8[::1], float64[::1])"
_UNSET = object()
_kernel: Any = _UNSET


def kernel() -> Any:
    """The compiled :func:`scan_python` (compiled or loaded from the cache on the first call), or None (no numba, or
    ``STREAM_MONITOR_NO_JIT``): then nothing is scanned and every record is read the usual way."""
    global _kernel, _same
    if _kernel is _UNSET:
        _kernel = compile_kernel(scan_python, _SIGNATURE) if jit_enabled() else None
        _same = compile_kernel(same_texts_python, _SAME_SIGNATURE) if _kernel is not None else None
    return _kernel


_same: Any = None


def same_texts() -> Any:
    """The compiled :func:`same_texts_python` (after :func:`kernel`), or None."""
    return _same
