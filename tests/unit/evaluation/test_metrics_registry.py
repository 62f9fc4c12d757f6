"""Metric registry: names, import paths, config collections and errors."""

import textwrap

import pytest
import torch
from pytest import approx

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.metrics import (
    TextMetric,
    WeightedPerplexity,
    available_metrics,
    build_metric_collection,
    check_metrics,
    get_metric,
    register_metric,
)
from autotrain_pl.evaluation.metrics.registry import METRICS

BUILTIN_NAMES = {
    "perplexity", "bleu", "sacrebleu", "rouge1", "rouge2", "rougeL", "rougeLsum", "chrf",
    "chrf++", "bertscore", "accuracy", "f1", "f1_macro", "f1_micro", "token_f1", "exact_match",
    "meteor",
}  # fmt: skip


def test_all_builtin_names_are_registered():
    assert BUILTIN_NAMES <= set(available_metrics())


def test_unknown_name_lists_known_names():
    with pytest.raises(AutotrainError, match="metric 'blue' is not known") as error:
        get_metric("blue")
    assert "bleu" in str(error.value) and "rougeLsum" in str(error.value)
    assert "my_pkg.metrics.MyMetric" in str(error.value) and "\n" not in str(error.value)


def test_names_are_case_insensitive():
    assert type(get_metric("ROUGEl").metric) is type(get_metric("rougeL").metric)
    assert "rougeL" in available_metrics() and "rougel" not in available_metrics()


def test_bad_arguments_are_user_errors():
    with pytest.raises(AutotrainError, match="bad arguments"):
        get_metric("exact_match", normalise=False)


def test_collection_from_config_names_and_kinds():
    metrics = build_metric_collection(
        ["perplexity", "bleu", "rougeL", "exact_match"],
        metric_kwargs={"exact_match": {"normalize": False}},
    )
    assert list(metrics) == ["perplexity", "bleu", "rougeL", "exact_match"]
    assert isinstance(metrics["perplexity"], WeightedPerplexity)
    assert metrics["perplexity"].kind == "token"
    text_metrics = {name: m for name, m in metrics.items() if m.kind == "text"}
    for metric in text_metrics.values():
        metric.update(["The cat sat."], ["the cat sat."])
    results = {key: value for m in text_metrics.values() for key, value in m.compute().items()}
    assert set(results) == {"bleu", "rougeL", "exact_match"}
    assert results["exact_match"] == 0.0  # normalize=False reached the metric
    assert results["rougeL"] == approx(1.0)
    metrics["rougeL"].reset()
    metrics["rougeL"].update(["a b"], ["c d"])
    assert metrics["rougeL"].compute() == {"rougeL": 0.0}


def test_collection_errors():
    with pytest.raises(AutotrainError, match="not in eval_metrics"):
        build_metric_collection(["bleu"], metric_kwargs={"bertscore": {}})
    with pytest.raises(AutotrainError, match="more than once"):
        build_metric_collection(["bleu", "bleu"])
    with pytest.raises(AutotrainError, match="list"):
        build_metric_collection("bleu")


def test_custom_metrics_by_import_path(tmp_path, monkeypatch):
    module = tmp_path / "my_eval_metrics.py"
    module.write_text(
        textwrap.dedent(
            '''
            import torch
            from torchmetrics import Metric
            from autotrain_pl.evaluation.metrics import MeanScore, TextMetric

            class LengthRatio(Metric):
                """A raw torchmetrics metric: the registry wraps it in a TextMetric."""

                def __init__(self):
                    super().__init__()
                    self.add_state("pred", torch.tensor(0.0), dist_reduce_fx="sum")
                    self.add_state("ref", torch.tensor(0.0), dist_reduce_fx="sum")

                def update(self, preds, target):
                    self.pred += sum(len(p) for p in preds)
                    self.ref += sum(len(refs[0]) for refs in target)

                def compute(self):
                    return self.pred / self.ref

            class StartsSame(MeanScore):
                def score(self, prediction, references):
                    return float(any(prediction[:1] == ref[:1] for ref in references))

            def starts_same(name="starts_same"):
                return TextMetric(name, StartsSame())

            NOT_CALLABLE = 3
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    ratio = get_metric("my_eval_metrics.LengthRatio")
    assert isinstance(ratio, TextMetric)
    ratio.update(["abcd"], ["ab"])
    assert ratio.compute() == {"LengthRatio": approx(2.0)}

    starts = build_metric_collection(
        ["my_eval_metrics.starts_same"],
        metric_kwargs={"my_eval_metrics.starts_same": {"name": "first_char"}},
    )["my_eval_metrics.starts_same"]
    starts.update(["abc", "xyz"], ["axe", "yes"])
    assert starts.compute() == {"first_char": approx(0.5)}

    with pytest.raises(AutotrainError, match="cannot import module"):
        get_metric("no_such_package_xyz.Metric")
    with pytest.raises(AutotrainError, match="is not callable"):
        get_metric("my_eval_metrics.NOT_CALLABLE")


def test_register_metric_decorator():
    @register_metric("test_always_one")
    def always_one() -> TextMetric:
        from autotrain_pl.evaluation.metrics import ExactMatch

        return TextMetric("test_always_one", ExactMatch())

    try:
        assert "test_always_one" in available_metrics()
        metric = get_metric("test_always_one")
        metric.update(["x"], ["x"])
        assert metric.compute() == {"test_always_one": 1.0}
    finally:
        METRICS.unregister("test_always_one")
    with pytest.raises(AutotrainError, match="contain no"):
        register_metric("has.dot")


def test_perplexity_registered_metric_logs_a_tensor():
    metric = get_metric("perplexity")
    metric.update(torch.tensor(2.0), torch.tensor(2.0))
    assert metric.compute().item() == approx(torch.e)


def test_check_metrics_fails_without_building_anything(monkeypatch):
    built = []
    monkeypatch.setattr(
        "autotrain_pl.evaluation.metrics.bertscore.load_bertscore_model",
        lambda *args: built.append(args),
    )
    check_metrics(["bertscore", "f1"], {"bertscore": {"model_name_or_path": "/nowhere"}})
    assert built == []  # checked, not loaded
    cases = [
        (["f2"], None, "metrics: metric 'f2' is not known"),
        (["bleu", "bleu"], None, "more than once"),
        (["bleu"], {"bertscore": {}}, "metric_kwargs has entries ['bertscore'] that are not in "
                                      "metrics"),
        (["bertscore"], {"bertscore": {"model": "x"}}, "bad arguments ['model']"),
        (["bertscore"], {"bertscore": "roberta"}, "metric_kwargs['bertscore'] must be an object"),
        (["bleu"], ["bleu"], "metric_kwargs must map metric names"),
        ("bleu", None, "must be a list of metric names"),
    ]
    for names, kwargs, message in cases:
        with pytest.raises(AutotrainError) as error:
            check_metrics(names, kwargs)
        assert message in str(error.value) and "\n" not in str(error.value)
