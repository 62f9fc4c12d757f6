"""The seed-style ``use_enhanced_eval`` switch maps onto PeriodicEval + MetricsLogger callbacks."""

import pytest

from autotrain_pl.callbacks import (
    MetricsLoggerCallback,
    PeriodicEvalCallback,
    enhanced_eval_callbacks,
)
from autotrain_pl.callbacks.enhanced_eval import check_enhanced_eval
from autotrain_pl.errors import AutotrainError
from autotrain_pl.objectives import SFTModule


def test_text_metrics_become_a_periodic_eval():
    periodic, metrics_logger = enhanced_eval_callbacks(["perplexity", "bleu", "rougeL"], 50)
    assert isinstance(periodic, PeriodicEvalCallback)
    assert periodic.metrics == ["bleu", "rougeL"] and periodic.every_n_steps == 50
    assert isinstance(metrics_logger, MetricsLoggerCallback)


def test_perplexity_alone_needs_no_generation():
    callbacks = enhanced_eval_callbacks(["perplexity"])
    assert [type(c) for c in callbacks] == [MetricsLoggerCallback]
    assert [type(c) for c in enhanced_eval_callbacks(None)] == [MetricsLoggerCallback]


@pytest.mark.parametrize("args, match", [
    ((False, ["bleu"], None), "use_enhanced_eval"),
    ((False, None, 10), "use_enhanced_eval"),
    ((True, ["nope"], None), "unknown metric"),
    ((True, 5, None), "comma string"),
    ((True, ["bleu"], 0), "eval_steps"),
])
def test_bad_combinations(args, match):
    with pytest.raises(AutotrainError, match=match):
        check_enhanced_eval(*args)


def test_objective_configure_callbacks():
    module = SFTModule(model_name_or_path="builtin:tiny", use_enhanced_eval=True,
                       eval_metrics=["perplexity", "exact_match"], eval_steps=5)
    periodic, metrics_logger = module.configure_callbacks()
    assert periodic.metrics == ["exact_match"] and periodic.every_n_steps == 5
    assert isinstance(metrics_logger, MetricsLoggerCallback)
    assert SFTModule(model_name_or_path="builtin:tiny").configure_callbacks() == []
    with pytest.raises(AutotrainError, match="use_enhanced_eval"):
        SFTModule(model_name_or_path="builtin:tiny", eval_metrics=["bleu"])
