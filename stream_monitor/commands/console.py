"""Human-readable output for the terminal: alert lines and config explanations.

An alert is one line (status, severity, kind, model / channel, the detector's test, event time,
owners) and, when it carries evidence, a second indented line saying what moved.

>>> from stream_monitor.bridges.mapping import example_alert
>>> line = format_alert(example_alert(severity="critical", model="m", feature="x", detector="psi", statistic=0.53, threshold=0.2,
...     event_time="2026-01-01T00:05:00.000Z", labels={}), color=False)
>>> line
'FIRING    critical  data_drift        m / x  psi=0.53 > 0.2  at 2026-01-01T00:05:00.000Z'
"""

from __future__ import annotations

from typing import Any

from stream_monitor.config import AppConfig, ConfigError
from stream_monitor.core import evidence as evi
from stream_monitor.core.alert import AlertEvent
from stream_monitor.core.reference import CategoricalReference, Reference
from stream_monitor.core.settings import DETECTOR_PARAMS, Chi2Params, DetectionSettings, DetectorParams, RateParams
from stream_monitor.core.signing import key_id
from stream_monitor.core.stats import chi2_critical_value

_COLORS = {"critical": "\033[1;31m", "warning": "\033[33m", "info": "\033[36m", "resolved": "\033[32m"}
_RESET = "\033[0m"


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def format_alert(a: AlertEvent, color: bool = True) -> str:
    """One alert event as terminal text, coloured by severity unless ``color`` is false.

    >>> from stream_monitor.bridges.mapping import example_alert
    >>> ev = {"type": "numeric", "reference": {"mean": 0.35, "p50": 0.31}, "current": {"mean": 0.52, "p50": 0.49},
    ...       "change": {"direction": "rose", "mean": 0.17, "mean_sd": 0.84}}
    >>> print(format_alert(example_alert(model="m", feature="x", detector="ks", statistic=0.31, threshold=0.12,
    ...     event_time="2026-01-01T00:05:00.000Z", labels={}, evidence=ev), color=False))
    FIRING    warning   data_drift        m / x  ks=0.31 > 0.12  at 2026-01-01T00:05:00.000Z
              mean rose from 0.35 to 0.52 (+0.17, +0.84 sd); p50 0.31 → 0.49
    >>> ev["detectors"] = [{"name": "ks"}, {"name": "psi"}, {"name": "adwin"}]
    >>> print(format_alert(example_alert(model="m", feature="x", detector="ks", statistic=0.31, threshold=0.12,
    ...     event_time="2026-01-01T00:05:00.000Z", labels={}, evidence=ev), color=False).splitlines()[0])
    FIRING    warning   data_drift        m / x  ks=0.31 > 0.12 (also psi, adwin)  at 2026-01-01T00:05:00.000Z
    """
    status = "ESCALATED" if a.escalated else a.status.upper()
    if a.status == "firing":
        detail = f"{a.detector}={_num(a.statistic)} {evi.breach_sign(a.detector)} {_num(a.threshold)}"
    else:
        detail = f"{a.detector} back within {_num(a.threshold)}"
    others = [d["name"] for d in (a.evidence or {}).get("detectors", []) if d.get("name") != a.detector]
    if others and a.status == "firing":
        detail += f" (also {', '.join(others)})"
    text = f"{status:<9} {a.severity:<9} {a.kind:<17} {a.model} / {a.feature}  {detail}  at {a.event_time}"
    owners = ", ".join(f"{k}={v}" for k, v in a.labels.items() if k in ("team", "owner"))
    if owners:
        text += f"  [{owners}]"
    if a.evidence:
        main, detail = evi.headline(a.evidence, a.status == "firing", a.feature)
        text += "\n          " + main + (f"; {detail}" if detail else "")
        # a model's performance page: the other metrics moving with its lead, or all that moved when it resolves
        moving = [c["channel"] for c in a.evidence.get("channels", []) if c["channel"] != a.feature] or a.evidence.get("agreed_channels", [])
        if moving:
            head = "also moving" if a.status == "firing" else "moved during the episode"
            text += f"\n          {head}: {', '.join(evi.channel_words(c) for c in moving)}"
    if not color:
        return text
    key = "resolved" if a.status == "resolved" else a.severity
    return f"{_COLORS.get(key, '')}{text}{_RESET}"


def _chi2_critical(p: DetectorParams, categories: int) -> float:
    return chi2_critical_value(p.threshold if p.threshold is not None else 1e-6, max(categories - 1, 1))


def _defaults_row(name: str, p: DetectorParams) -> str:
    """One detector of the defaults table, its threshold read as alerts read it."""
    sev = f"severity {p.severity}"
    if isinstance(p, Chi2Params):
        crit = ", ".join(f"{_chi2_critical(p, k):.1f} ({k})" for k in (2, 5, 10, 20))
        return (
            f"    {name:<22} p-value <= {_num(p.threshold)} and total variation >= {_num(p.min_effect)}  {sev}"
            + (f", critical at p <= {_num(p.critical)}" if p.critical is not None else "")
            + f"\n    {'':<22} alerts show chi-square > its critical value, by number of categories: {crit}"
        )
    if isinstance(p, RateParams):
        return f"    {name:<22} excess over reference > {_num(p.threshold):<6} critical excess {_num(p.critical):<6} {sev}"
    return f"    {name:<22} threshold {_num(p.threshold):<8} critical {_num(p.critical):<8} {sev}"


def _detector_term(name: str, p: DetectorParams, ref: Reference | None) -> str:
    """``name>threshold`` as alerts show it: chi-square against its critical value, rates as excess."""
    if isinstance(p, Chi2Params):
        if isinstance(ref, CategoricalReference):
            k = len(ref.categories)
            return f"chi2>{_chi2_critical(p, k):.4g} (p<={_num(p.threshold)}, {k} baseline categories)"
        return f"chi2>critical value at p<={_num(p.threshold)}"
    if isinstance(p, RateParams):
        return f"{name}>ref+{_num(p.threshold)}"
    return f"{name}>{_num(p.threshold)}"


def _channel_line(ch_name: str, t: str, s: DetectionSettings, ref: Reference | None) -> str:
    return f"  {ch_name} ({t}): " + ", ".join(_detector_term(n, s.params(n), ref) for n in s.detectors_for(t))  # type: ignore[arg-type]


def _profiles(baseline: Any) -> list[tuple[str, Any]]:
    """(version, profile) of a model's loaded baselines: ``""`` for the model's own, then one per named version."""
    if baseline is None:
        return []
    return [("", baseline), *getattr(baseline, "versions", {}).items()]


def explain_config(cfg: AppConfig, baselines: dict[str, dict[str, Reference]] | None = None, warnings: list[str] | None = None) -> str:
    """A plain-language summary of what a config monitors, for ``check-config``.

    ``baselines`` (model -> channel -> reference) give chi-square its exact critical value;
    ``warnings`` are listed at the end.
    """
    baselines = baselines or {}
    k = cfg.kafka
    lines = [
        "config is valid.",
        "",
        f"kafka: {', '.join(k.bootstrap_servers)}  ({k.security_protocol})",
        f"  reads {', '.join(k.input_topics)}" + (f" and labels from {k.label_topic}" if k.label_topic else ""),
        f"  as group {k.group_id!r}; alerts -> {k.alerts_topic}; dead letters -> {k.dlq_topic}",
        f"  {'exactly-once (transactions, id ' + cfg.transactional_id() + ')' if k.exactly_once else 'at-least-once'}; "
        f"checkpoint every {k.commit_interval_ms} ms; state changelog {k.resolved_changelog_topic() if cfg.state.enabled else 'disabled'}",
    ]
    if cfg.state.enabled:
        try:
            lines.append(f"  state signed with key id {key_id(cfg.state.signing_keys().current).decode()}")
        except ConfigError as exc:
            lines.append(f"  WARNING: `run` will refuse to start: {exc}")
    r = cfg.retraining
    if r.enabled:
        asks = [*r.on_kinds, *r.on_channels]
        persist = f"drift firing {r.drift_persists_seconds:g} s" if r.drift_persists_seconds is not None else "never on drift"
        lines.append(
            f"  retraining events -> {r.topic}: on {', '.join(asks) or 'no alert kind'} at once, {persist}; "
            f"at most one per model per {r.cooldown_seconds:g} s; data window {r.window_seconds:g} s (event time)"
        )
    d = cfg.defaults
    lines += [
        "",
        f"defaults: window {d.window.size} observations, evaluated every {d.window.step}; "
        f"reference = {d.reference.kind} of {d.reference.size} observations",
        f"  alerts fire after {d.lifecycle.min_consecutive} breaching evaluations, resolve after "
        f"{d.lifecycle.resolve_after} clear ones, cooldown {d.lifecycle.cooldown_seconds:g} s (event time)",
        f"  numeric channels: {', '.join(d.detectors_for('numeric'))}",
        f"  categorical channels: {', '.join(d.detectors_for('categorical'))}",
    ]
    for name in DETECTOR_PARAMS:
        lines.append(_defaults_row(name, d.params(name)))
    lines.append("  (a rate's statistic is the window's share of missing / out-of-range / unseen values minus the reference's share)")
    lines.append("")
    if not cfg.models:
        lines.append("models: none configured; every model and feature is discovered on first sight (zero-config).")
    for model_name, model in cfg.models.items():
        owner = ", ".join(f"{k_}={v}" for k_, v in {**cfg.labels, **model.labels}.items()) or "no labels"
        lines.append(f"model {model_name}: {owner}; " + ("discovers unnamed features" if model.discover else "only named channels"))
        if model.baseline:
            lines.append(f"  reference: baseline profile {model.baseline}")
        for version, path in model.baselines.items():
            lines.append(f"  reference of model_version {version!r}: baseline profile {path} (the channels it covers; the others as without it)")
        calibrated = [v or "the model" for v, b in _profiles(baselines.get(model_name)) if b.calibration is not None]
        if calibrated and model.estimate.enabled:
            lines.append(f"  label-free estimates start calibrated from the baseline of {', '.join(calibrated)}")
        for ch_name, ch in model.channels.items():
            if not ch.enabled:
                lines.append(f"  {ch_name}: ignored")
                continue
            types = (ch.type,) if ch.type else ("numeric", "categorical")
            for t in types:
                ref = baselines.get(model_name, {}).get(ch_name)
                lines.append(_channel_line(ch_name, t, cfg.channel_settings(model_name, ch_name, t), ref))
    if warnings:
        lines += ["", *(f"WARNING: {w}" for w in warnings)]
    return "\n".join(lines) + "\n"
