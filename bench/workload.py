"""The benchmark's workloads: seeded inference events of a fixed shape, encoded once.

The throughput workload: 20 numeric + 5 categorical features and a prediction per
event (26 channel values), with a mean shift on ``x0`` and a new category on ``c0`` part-way so the
alert path runs too. ``latency_ms`` is dropped so every record carries exactly those 26 values.
"""

from __future__ import annotations

from typing import Iterator

import orjson

from stream_monitor.synthetic import Drift, StreamSpec, generate_events

N_NUMERIC = 20
N_CATEGORICAL = 5
CHANNELS_PER_RECORD = N_NUMERIC + N_CATEGORICAL + 1  # + the prediction


def kept(data: bytes) -> bytes:
    """A copy of ``data`` sized to its length, for bytes the benchmark keeps by the hundred thousand.

    An ``orjson.dumps`` result holds about 4 KiB of memory whatever its length (orjson 3.13: 4,121
    bytes of peak RSS per kept 488-byte result, 552 for a copy), so a workload kept as those took
    8x its size: 12 GB for the latency run's 740,000 records, before this copy.
    """
    return bytes(memoryview(data))


def throughput_spec(n_events: int, model: str = "bench-v1", seed: int = 7) -> StreamSpec:
    return StreamSpec(
        model=model,
        n_events=n_events,
        seed=seed,
        n_numeric=N_NUMERIC,
        n_categorical=N_CATEGORICAL,
        drifts=(
            Drift("mean_shift", "x0", int(0.4 * n_events), int(0.7 * n_events), amount=1.5),
            Drift("new_category", "c0", int(0.5 * n_events), None, amount=0.3, category="XX"),
        ),
    )


def encoded(spec: StreamSpec, *, prediction: bool = True) -> Iterator[bytes]:
    """JSON bytes of each event of ``spec`` (no latency_ms; optionally no prediction)."""
    dumps = orjson.dumps
    for e in generate_events(spec):
        del e["latency_ms"]
        if not prediction:
            del e["prediction"]
        yield kept(dumps(e))


def throughput_events(n_events: int) -> list[bytes]:
    return list(encoded(throughput_spec(n_events)))


def channel_models(channels: int, per_model: int = 25) -> list[StreamSpec]:
    """Specs whose channels add up to ``channels``: models of 20+5 features (no prediction), and
    for fewer than 25 channels one model of ``channels - 1`` numeric + 1 categorical features."""
    if channels < per_model:
        return [StreamSpec(model="m0", n_events=0, seed=100, n_numeric=max(0, channels - 1), n_categorical=min(1, channels))]
    if channels % per_model:
        raise ValueError(f"channels must be below {per_model} or a multiple of it, got {channels}")
    return [
        StreamSpec(model=f"m{k}", n_events=0, seed=100 + k, n_numeric=20, n_categorical=5)
        for k in range(channels // per_model)
    ]
