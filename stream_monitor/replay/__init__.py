"""Replay: the monitor over a bounded stretch of history (``stream-monitor replay`` and ``export``).

Replay reads every record as ``run`` reads it and then judges each model once, in event-time order,
with the same judging step (:class:`~stream_monitor.replay.engine.ReplayEngine`, :meth:`PartitionMonitor.judge
<stream_monitor.core.monitor.PartitionMonitor.judge>`), over a topic (a group-less consumer assigned every
partition, between offsets looked up by time) or over a JSONL(.gz) file. The output is deterministic:
the same input and config give byte-identical alert files, whatever the batch size or the order in
which the broker hands out partitions, because

* every row is judged in the order of its key (event time, then a digest of the record's bytes:
  never partition or offset), and a replay has every record, so none is late;
* the core's alerts depend on event time and observation counts only, never on the wall clock;
* alerts are written sorted by (event time, partition, offset, emission order) and dead letters
  by (partition, topic, offset).

A file line is either a plain inference event (partition 0, offset = line number, topic = the
file's name) or an *envelope* written by ``export``::

    {"topic": "inference-events", "partition": 2, "offset": 1234, "timestamp": 1767225600000,
     "key": "fraud-v3", "value": "{\\"model\\": \\"fraud-v3\\", ...}"}

``value`` (and ``key``) hold the record's bytes as UTF-8 text, or ``value_base64`` when they are
not UTF-8, so ``replay --input export.jsonl.gz`` sees exactly the bytes ``replay --topic`` sees.

>>> from stream_monitor.core.spec import MonitorSpec
>>> from stream_monitor.replay.engine import ReplayEngine
>>> from stream_monitor.replay.sources import SourceRecord
>>> from stream_monitor.replay.timerange import TimeRange
>>> engine = ReplayEngine(MonitorSpec(instance="doc"), time_range=TimeRange(10, None))
>>> engine.feed([SourceRecord("t", 0, i, None, None, b'{"model": "m", "ts": %d, "features": {"x": 1}}' % i)
...              for i in range(20)])
>>> outcome = engine.finish()
>>> outcome.records_read, outcome.records_skipped, outcome.records_processed
(20, 10, 10)
"""
