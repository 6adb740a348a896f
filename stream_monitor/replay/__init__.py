"""Replay: the monitor over a bounded stretch of history (``stream-monitor replay`` and ``export``).

Replay runs the same processing step as ``run`` (:meth:`PartitionMonitor.process
<stream_monitor.core.monitor.PartitionMonitor.process>`), one monitor per source partition, over a
topic (a group-less consumer assigned every partition, between offsets looked up by time) or over
a JSONL(.gz) file. The output is deterministic: the same input and config give byte-identical
alert files, whatever the batch size or the order in which the broker hands out partitions,
because

* each partition's records reach its monitor in one defined order (offset order; with several
  topics, a merge of the partitions of the same number by (record timestamp, topic, offset));
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
