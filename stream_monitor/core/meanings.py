"""What each detector's statistic means, in one sentence: the ``meaning`` of an alert's evidence and of its description.

``tests/core/test_evidence.py`` checks that every registered detector has one.
"""

from __future__ import annotations

_RISE = ": the statistic is the rise of the error rate since the change, in error-rate points"
MEANINGS: dict[str, str] = {
    "adwin": "ADWIN change-point detector: the statistic is the size of the level shift since the change, "
    "in reference standard deviations",
    "page_hinkley": "Page-Hinkley change-point detector: the statistic is the size of the level shift since the "
    "change, in reference standard deviations",
    "psi": "Population Stability Index of the window against the reference over reference-quantile bins "
    "(or categories); above 0.2 is a significant shift",
    "js": "Jensen-Shannon distance between the window's and the reference's binned distributions "
    "(0 = identical, 1 = disjoint)",
    "ks": "two-sample Kolmogorov-Smirnov distance: the largest gap between the window's and the "
    "reference's cumulative distributions",
    "wasserstein": "Wasserstein-1 distance between the window and the reference, in reference standard deviations",
    "chi2": "chi-square homogeneity statistic of category counts; the threshold is its critical value at "
    "the configured p-value",
    "missing_rate": "share of missing observations in the window minus the reference's share; the threshold "
    "is an excess over the reference",
    "out_of_range_rate": "share of present observations that are invalid (or, for numbers, outside the valid "
    "range) minus the reference's share; the threshold is an excess over the reference",
    "unseen_category_rate": "share of present observations whose category the reference never saw; the "
    "threshold is an excess over the reference (which saw none)",
    "slo_accuracy": "service level: the window's accuracy must stay at or above the minimum",
    "slo_error_rate": "service level: the window's error rate must stay at or below the maximum",
    "slo_mae": "service level: the window's mean absolute error must stay at or below the maximum",
    "slo_recall": "service level: the window's recall (share of positives predicted positive) must stay at or above the minimum",
    "slo_precision": "service level: the window's precision (share of predicted positives that are positive) must stay at or "
    "above the minimum",
    "slo_f1": "service level: the window's F1 (of the positive class) must stay at or above the minimum",
    "slo_roc_auc": "service level: the window's ROC AUC must stay at or above the minimum",
    "auc_drop": "ROC AUC of the window (Mann-Whitney, exact); the threshold is the reference's AUC minus the allowed "
    "fall, and the fall must be significant (one-sided z-test, Hanley-McNeil standard errors)",
    "slo_log_loss": "service level: the window's mean log loss must stay at or below the maximum",
    "slo_cost": "service level: the window's cost per 1,000 labelled predictions must stay at or below the maximum",
    "cost_increase": "rise of the window's cost per 1,000 labelled predictions over the reference's (one-sided z-test "
    "on the mean cost); the threshold is the smallest rise that counts",
    "ddm": f"DDM (drift detection method) on the 0/1 error stream{_RISE} (0.05 = 5 points more wrong decisions)",
    "hddm_a": f"HDDM_A (Hoeffding bound on the mean error before and after a cut) on the 0/1 error stream{_RISE}",
    "hddm_w": f"HDDM_W (Hoeffding bound on exponentially weighted error means) on the 0/1 error stream{_RISE}",
    "eddm": f"EDDM (the distance between errors shrinks as they become more frequent) on the 0/1 error stream{_RISE}",
    "two_proportion": "two-proportion z-test of the window's error rate against the reference's (one-sided): the statistic "
    "is the rise in error-rate points (for recall or precision, the fall of the share of successes)",
    "ece": "expected calibration error of the window's scores (10 score bins); the threshold is the reference's "
    "ECE plus the allowed excess",
}
"""What each detector's statistic means, in one sentence."""


def meaning(detector: str, channel: str = "") -> str:
    """What ``detector``'s statistic means on ``channel``: an SLO on a label-free estimate says so.

    >>> meaning("slo_precision", "__estimated_precision__.refund")[:60]
    "service level: the window's estimated precision (share of pr"
    >>> meaning("slo_precision", "__estimated_precision__.refund").endswith("not from labels")
    True
    >>> meaning("slo_precision", "__precision__") == MEANINGS["slo_precision"], meaning("nope")
    (True, 'nope')
    """
    text = MEANINGS.get(detector, detector)
    if channel.startswith("__estimated_") and detector.startswith("slo_"):
        text = text.replace("the window's ", "the window's estimated ", 1)
        text += (
            "; estimated from the calibrated probabilities of the window's decisions (each decision's chance of "
            "being right, or its expected cost), not from labels"
        )
    return text
