"""Replay reports: a self-contained HTML page (inline CSS and SVG, no network) and SVG/JSON files.

The page answers "what drifted, and when" first: a sentence per model, then per model a timeline
of firing episodes (one row per channel and detector, shaded by severity), a table of every
channel (type, reference, detectors, alerts fired/resolved, time firing), and for each detector
that alerted, its statistic over event time against the threshold with the firing spans shaded.

Plots are plain SVG written here (no plotting dependency, crisp at any zoom, a few kB each).
Evaluations are downsampled as they arrive: each series keeps the minimum and maximum of buckets
of consecutive evaluations, at most ``max_points`` buckets, so spikes survive and memory stays
bounded however long the replay. Nothing here reads the wall clock, so the same replay gives the
same report.

>>> from stream_monitor.report.collect import ReportCollector, ReportMeta
>>> from stream_monitor.report.html import render_html
>>> from stream_monitor.core.channel import EvaluationRecord
>>> c = ReportCollector(max_points=4)
>>> c.add_evaluations(0, [EvaluationRecord("m", "x", "psi", t, t / 10, 0.5, t > 5) for t in range(10)])
>>> from stream_monitor.bridges.mapping import example_alert
>>> c.add_alert(0, example_alert(alert_id="a1", model="m", feature="x", detector="psi", statistic=0.6, threshold=0.5,
...     event_time="1970-01-01T00:00:00.006Z", starts_at="1970-01-01T00:00:00.006Z", source={"topic": "t", "partition": 0, "offset": 6}))
>>> data = c.build({}, ReportMeta(source="doc"))
>>> [(p.model, p.channel, p.detector, len(p.episodes)) for m in data.models for p in m.panels]
[('m', 'x', 'psi', 1)]
>>> "<svg" in render_html(data)
True
"""
