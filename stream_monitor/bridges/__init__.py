"""``stream-monitor bridge alertmanager|pagerduty``: forward alert events to on-call tooling.

A bridge is a consumer group of its own on the alert topic (``read_committed``, manual commits).
It reads alert events in (partition, offset) order, maps them, POSTs them to the receiver and
commits the offsets only after the receiver accepted them (HTTP 2xx). Only an answer that says
the request is malformed (400, 422) rejects an alert: a rejected batch is split to find the
alert(s) at fault, which are logged, counted
(``stream_monitor_bridge_deliveries_total{outcome="rejected"}``) and skipped, so one malformed
alert cannot block paging for all the others. Every other answer (3xx, 401, 403, 404, 429, 5xx,
and PagerDuty's 400 for a wrong routing key), a network error or the request deadline means the
receiver or our own setup is wrong: the bridge retries with exponential backoff and jitter (a
``Retry-After`` header is honoured up to the maximum delay), counts each attempt
(``outcome="retry"``), answers ``/readyz`` with 503 and commits nothing until delivery. A POST
never follows a redirect, ``--timeout`` bounds each request in total (however slowly the
receiver answers), and the routing key is redacted from every log line even when a receiver
echoes it back. Delivery is therefore at-least-once; both receivers deduplicate (Alertmanager by
label set, PagerDuty by ``dedup_key``).

Alertmanager (``POST {url}/api/v2/alerts``, several ``--url`` for an HA pair: accepted when one
accepts, as Prometheus does):

- ``alertname`` = ``StreamMonitor`` + the kind in CamelCase: ``StreamMonitorDataDrift``,
  ``StreamMonitorPredictionDrift``, ``StreamMonitorDataQuality``, ``StreamMonitorPerformance``.
- labels: the alert's ``labels`` (team, owner, env, ...), then ``--label K=V``, then
  ``alertname``, ``model``, ``feature``, ``detector``, ``severity``, ``kind`` (ours win). No
  partition: a page's firing, escalation and resolve may come from records of different input
  partitions and must keep one label set. Label names are sanitised to
  ``[a-zA-Z_][a-zA-Z0-9_]*``; empty values are dropped.
- annotations: the alert's annotations (summary, description, runbook_url, ...) plus statistic,
  threshold, p_value, model_version, alert_id, fingerprint, event_time, window, reference,
  source and monitor instance, all as strings.
- ``startsAt`` = ``starts_at``; a firing alert gets ``endsAt`` = now + 4 x ``--resend-interval``
  (Prometheus' rule) and is re-sent every ``--resend-interval`` seconds while it fires; a resolved
  one gets ``endsAt`` = ``ends_at``. Both are clamped to the bridge's clock (event time may run
  ahead of or behind the wall clock), so a resolved alert is resolved *now* in Alertmanager.
- An escalation (same fingerprint, higher severity; on a channel's page possibly another lead
  ``detector`` and so ``kind``) changes the label set: the old label set is sent with ``endsAt`` =
  now, so Alertmanager does not keep a stale warning next to the critical.
- ``generatorURL`` = ``--generator-url``: a template with ``{model}``, ``{feature}``,
  ``{detector}``, ``{fingerprint}``, ``{partition}`` (the source record's), ``{alert_id}`` (URL-quoted), or a plain base
  to which ``?model=..&feature=..&detector=..&fingerprint=..`` is appended.
- On (re)assignment the bridge rebuilds the set of firing alerts of its partitions by reading
  them up to the committed offset (the alert topic is compacted by fingerprint) and re-sends them
  at once, so a restarted bridge keeps Alertmanager's alerts alive.

PagerDuty Events API v2 (``--url`` default ``https://events.pagerduty.com/v2/enqueue``):
``routing_key``; ``event_action`` ``trigger`` (firing) / ``resolve`` (resolved); ``dedup_key`` =
``fingerprint``; ``payload.summary`` (annotation ``summary``, <= 1024 chars), ``payload.source`` =
model, ``payload.severity`` = severity (info/warning/critical map to themselves),
``payload.timestamp`` = ``starts_at``, ``payload.component`` = feature, ``payload.group`` = kind,
``payload.class`` = detector, ``payload.custom_details`` = the alert's facts; ``links`` = the
runbook; ``client``/``client_url`` = stream-monitor and the generator URL. The routing key comes
from ``--routing-key``, ``--routing-key-file`` or ``STREAM_MONITOR_PAGERDUTY_ROUTING_KEY(_FILE)``
and is never logged.

Every bridge adds the extra headers of ``--header 'Name: value'`` and the config's
``bridge.headers`` to its requests (an auth header for a pipeline runner's webhook); a value may
take its secret from ``${file:PATH}`` or ``${env:NAME}``, is validated at start-up
(``bridges/headers.py``) and redacted from every log line like the routing key.

HTTP uses the standard library's ``http.client`` (with the environment's proxy settings, as
``urllib`` would): one JSON POST at a time needs no connection pool, and the sidecar image stays
free of another dependency.
"""
