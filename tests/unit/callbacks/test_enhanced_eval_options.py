"""The ``eval_*`` keys of ``use_enhanced_eval``: parsing, the callbacks they become, and one-line
errors naming the key before any model loads."""

from pathlib import Path

import pytest

from autotrain_pl.callbacks import (
    BenchmarkEvalCallback,
    MetricsLoggerCallback,
    PeriodicEvalCallback,
    enhanced_eval_callbacks,
)
from autotrain_pl.callbacks.benchmark_eval import describe_benchmark
from autotrain_pl.callbacks.enhanced_eval import check_enhanced_eval, parse_eval_metrics
from autotrain_pl.errors import AutotrainError
from autotrain_pl.objectives import DPOModule, SFTModule

ARC = str(Path(__file__).parents[2] / "fixtures" / "benchmarks" / "ai2_arc")


def test_a_comma_string_and_a_list_give_the_same_callbacks():
    assert parse_eval_metrics(" perplexity, bleu ,rouge") == ["perplexity", "bleu", "rouge"]
    assert parse_eval_metrics(None) == ["perplexity"]
    from_string = enhanced_eval_callbacks("perplexity,bleu,rouge", 5)
    from_list = enhanced_eval_callbacks(["perplexity", "bleu", "rouge"], 5)
    assert [type(c) for c in from_string] == [PeriodicEvalCallback, MetricsLoggerCallback]
    assert from_string[0].metrics == from_list[0].metrics == ["bleu", "rouge"]
    assert from_string[0].every_n_steps == 5 and from_string[0].batch_size == 8


def test_every_key_becomes_its_callback(tmp_path):
    held_out = tmp_path / "held_out.jsonl"
    held_out.write_text('{"messages": [{"role": "user", "content": "hi"}, '
                        '{"role": "assistant", "content": "yo"}]}\n')
    val, own, bench, _ = enhanced_eval_callbacks(
        "perplexity,bleu", eval_batch_size=4, eval_dataset_path=str(held_out),
        eval_save_predictions=True, eval_benchmark="arc", eval_benchmark_data=ARC,
        eval_benchmark_num_fewshot=1, eval_benchmark_limit=2)
    assert (val.prefix, val.metrics, val.data_path, val.batch_size) == ("val", ["bleu"], None, 4)
    assert (own.prefix, own.metrics, own.data_path) == ("eval", ["perplexity", "bleu"],
                                                        str(held_out))
    assert val.save_predictions and own.save_predictions and not own.evaluates_test
    assert isinstance(bench, BenchmarkEvalCallback)
    assert (bench.benchmark, bench.num_fewshot, bench.limit) == ("arc_challenge", 1, 2)
    # Without validation data: no val/ callback, and evaluations at each epoch end.
    own, bench, _ = enhanced_eval_callbacks("perplexity", eval_dataset_path=str(held_out),
                                            eval_benchmark="arc", eval_benchmark_data=ARC,
                                            has_validation=False)
    assert own.metrics == ["perplexity"] and own.every_n_epochs == 1 == bench.every_n_epochs


def test_arc_means_arc_challenge_as_on_the_leaderboard():
    name, shots, line = describe_benchmark("arc")
    assert (name, shots) == ("arc_challenge", 25)
    assert line == ("arc: running ARC-Challenge (arc_challenge, 25-shot, headline acc_norm, "
                    "as on the Open LLM Leaderboard)")
    name, shots, line = describe_benchmark("truthfulqa", 0)
    assert (name, shots) == ("truthfulqa_mc2", 0) and "TruthfulQA MC2" in line
    assert "1-shot as configured; the Open LLM Leaderboard ran it 25-shot" in \
        describe_benchmark("arc", 1)[2]


@pytest.fixture
def no_model_load(monkeypatch):
    import autotrain_pl.objectives.base as base

    def fail(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(base, "load_model", fail)


@pytest.mark.parametrize("options, key", [
    ({"eval_metrics": "perplexity,bleu,nope"}, "model.eval_metrics: unknown metric 'nope'"),
    ({"eval_metrics": "bleu,bleu"}, "model.eval_metrics lists"),
    ({"eval_metrics": 5}, "model.eval_metrics=5"),
    ({"eval_steps": 0}, "model.eval_steps=0"),
    ({"eval_batch_size": 0}, "model.eval_batch_size=0"),
    ({"eval_dataset_path": "missing.jsonl"}, "model.eval_dataset_path='missing.jsonl'"),
    ({"eval_save_predictions": "yes"}, "model.eval_save_predictions"),
    ({"eval_benchmark": "gsm8k"}, "model.eval_benchmark='gsm8k'"),
    ({"eval_benchmark": "arc", "eval_benchmark_data": "missing/"},
     "model.eval_benchmark_data='missing/'"),
    ({"eval_benchmark": "truthfulqa", "eval_benchmark_data": ARC,
      "eval_benchmark_num_fewshot": 5}, "model.eval_benchmark_num_fewshot=0"),
    ({"eval_benchmark": "arc"}, "needs model.eval_benchmark_data"),  # the hub is offline here
    ({"eval_benchmark_data": ARC}, "model.eval_benchmark_data applies to model.eval_benchmark"),
])
def test_bad_values_fail_in_init_naming_the_key(options, key, no_model_load):
    with pytest.raises(AutotrainError) as error:
        SFTModule("builtin:tiny", use_enhanced_eval=True, **options)
    assert key in str(error.value) and "\n" not in str(error.value)


def test_keys_need_the_switch_on_every_objective(no_model_load):
    with pytest.raises(AutotrainError, match="model.eval_batch_size/eval_dataset_path take effect"):
        DPOModule("builtin:tiny", eval_batch_size=4, eval_dataset_path="x.jsonl")
    check_enhanced_eval(False)  # defaults alone are fine
