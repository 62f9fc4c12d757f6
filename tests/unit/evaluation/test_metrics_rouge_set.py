"""``rouge`` in a metric list means ROUGE-1, ROUGE-2 and ROUGE-L, each as the single metric."""

import pytest

from autotrain_pl.evaluation.metrics import build_metric_collection, get_metric

PREDICTIONS = ["the cat sat on the mat", "hello there general", "a quick brown fox jumps"]
REFERENCES = ["a cat sat on a mat", "hello there", ["the quick brown fox", "a fox jumped"]]


def test_rouge_reports_rouge1_rouge2_rougeL_equal_to_the_single_metrics():
    metrics = build_metric_collection(["rouge", "rouge1", "rouge2", "rougeL"])
    for metric in metrics.values():
        metric.update(PREDICTIONS[:2], REFERENCES[:2])  # two batches: states accumulate
        metric.update(PREDICTIONS[2:], REFERENCES[2:])
    together = metrics.pop("rouge").compute()
    assert list(together) == ["rouge1", "rouge2", "rougeL"]
    singles = {key: value for metric in metrics.values() for key, value in
               metric.compute().items()}
    assert together == pytest.approx(singles, abs=1e-7)
    assert 0.0 < together["rouge2"] < together["rouge1"] <= 1.0


def test_rouge_resets_and_takes_stemming():
    metric = get_metric("rouge", use_stemmer=True)
    metric.update(["cats running"], ["cat runs"])
    assert metric.compute()["rouge1"] == pytest.approx(1.0)
    metric.reset()
    metric.update(["dogs"], ["cat"])
    assert metric.compute()["rouge1"] == 0.0
