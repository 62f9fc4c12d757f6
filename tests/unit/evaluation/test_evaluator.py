"""Evaluator tasks against hand computations; config checks; result JSON round trip."""

import json
import math
from pathlib import Path

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation import EvaluationConfig, EvaluationResult, Evaluator
from autotrain_pl.rendering import TrainOnWhat

FIXTURES = Path(__file__).parents[2] / "fixtures" / "benchmarks"
CHATS = [
    {"messages": [{"role": "user", "content": "What is 2+3?"},
                  {"role": "assistant", "content": "5"}]},
    {"messages": [{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Name a color."},
                  {"role": "assistant", "content": "Blue is a color."},
                  {"role": "user", "content": "Another?"},
                  {"role": "assistant", "content": "Green."}]},
    {"messages": [{"role": "user", "content": "Say hello"},
                  {"role": "assistant", "content": "Hello there, friend. How are you today?"}]},
]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def chat_file(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in CHATS))
    return str(path)


def hand_perplexity(model, renderer, train_on: str) -> float:
    """exp(sum w * nll / sum w), one unpadded forward per conversation."""
    from autotrain_pl.rendering import Message

    nll_sum = weight_sum = 0.0
    for row in CHATS:
        messages = [Message(m["role"], m["content"]) for m in row["messages"]]
        ids, weights = renderer.build_supervised_example(messages, TrainOnWhat(train_on))
        with torch.no_grad():
            logprobs = model(input_ids=torch.tensor([ids])).logits[0].double().log_softmax(-1)
        for t in range(1, len(ids)):
            nll_sum += -float(logprobs[t - 1, ids[t]]) * weights[t]
            weight_sum += weights[t]
    return math.exp(nll_sum / weight_sum)


@pytest.mark.parametrize("train_on", ["last_assistant_message", "all_assistant_messages"])
def test_perplexity_is_token_weighted_over_trained_tokens(chat_file, train_on):
    evaluator = Evaluator("builtin:tiny", data_path=chat_file, batch_size=2, train_on=train_on)
    result = evaluator.run()
    model, _, renderer, _ = evaluator.load()
    assert result.task == "language_modeling"
    assert result.metrics["perplexity"] == pytest.approx(hand_perplexity(model, renderer, train_on),
                                                         rel=1e-5)
    assert result.metrics["nll"] == pytest.approx(math.log(result.metrics["perplexity"]), rel=1e-5)
    assert result.details["num_samples"] == 3 and result.model_ref == "builtin:tiny"


def test_generation_scores_and_saves_predictions(chat_file, tmp_path):
    predictions = tmp_path / "out" / "predictions.jsonl"
    result = Evaluator(
        "builtin:tiny", data_path=chat_file, metrics=["rougeL", "exact_match"], limit=2,
        sampling={"max_new_tokens": 4}, predictions_path=str(predictions),
    ).run()
    assert result.task == "generation"
    assert set(result.metrics) >= {"rougeL", "exact_match"}
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(records) == 2
    assert set(records[0]) == {"prompt", "prediction", "reference"}
    assert records[1]["reference"] == "Green."
    assert result.config["sampling"]["max_new_tokens"] == 4


def test_benchmark_task_from_a_model_tuple(tmp_path):
    from autotrain_pl.models import load_model, load_tokenizer

    data = FIXTURES / "ai2_arc"
    model, tokenizer = load_model("builtin:tiny"), load_tokenizer("builtin:tiny")
    predictions = tmp_path / "arc.jsonl"
    result = Evaluator((model, tokenizer), benchmark="arc_easy", data_path=str(data),
                       num_fewshot=1, predictions_path=str(predictions)).run()
    assert result.task == "benchmark" and result.details["benchmark"] == "arc_easy"
    assert 0.0 <= result.metrics["acc"] <= 1.0 and "acc_norm" in result.metrics
    assert len(predictions.read_text().splitlines()) == 4
    table = result.summary_table()
    assert "arc_easy" in table and "acc_norm" in table and "num_fewshot=1" in table


def test_objective_module_is_accepted(chat_file):
    from autotrain_pl.objectives import SFTModule

    module = SFTModule(model_name_or_path="builtin:tiny")
    result = Evaluator(module, data_path=chat_file, chat_format="chatml").run()
    assert math.isfinite(result.metrics["perplexity"]) and result.model_ref == "builtin:tiny"


def test_config_errors_name_the_field():
    with pytest.raises(AutotrainError, match="task='translate'"):
        EvaluationConfig(task="translate", data_path="x.jsonl")
    with pytest.raises(AutotrainError, match="needs data_path"):  # run() reads a file
        Evaluator("builtin:tiny", task="generation", metrics=["bleu"]).run()
    with pytest.raises(AutotrainError, match="batch_size=0"):
        EvaluationConfig(data_path="x.jsonl", batch_size=0)
    with pytest.raises(AutotrainError, match="needs benchmark"):
        EvaluationConfig(task="benchmark")
    with pytest.raises(AutotrainError, match="do not apply to benchmarks"):
        EvaluationConfig(benchmark="mmlu", metrics=["bleu"])
    with pytest.raises(AutotrainError, match="sampling has unknown fields"):
        EvaluationConfig(data_path="x.jsonl", metrics=["bleu"], sampling={"temp": 0.5})
    with pytest.raises(AutotrainError, match="not language_modeling"):
        EvaluationConfig(data_path="x.jsonl", predictions_path="p.jsonl")
    with pytest.raises(AutotrainError, match="generation only"):
        EvaluationConfig(data_path="x.jsonl", sampling={"max_new_tokens": 3})
    assert EvaluationConfig(benchmark="hellaswag").task == "benchmark"
    assert EvaluationConfig(data_path="x.jsonl", metrics="bleu,rougeL").task == "generation"
    assert EvaluationConfig(data_path="x.jsonl").metrics == ["perplexity"]


def test_text_metrics_are_refused_for_language_modeling_before_loading(chat_file):
    with pytest.raises(AutotrainError, match="use task=generation"):
        Evaluator("builtin:tiny", task="language_modeling", data_path=chat_file, metrics=["bleu"])
    with pytest.raises(AutotrainError, match="use task=language_modeling"):
        EvaluationConfig(task="generation", data_path=chat_file, metrics=["perplexity"])


def test_result_json_round_trip_and_table(tmp_path):
    result = EvaluationResult(
        task="benchmark", metrics={"acc": 0.5, "acc_stderr": float("nan")},
        details={"benchmark": "mmlu", "num_docs": 2,
                 "groups": {f"subject_{i}": {"acc": i / 20, "num_docs": 1} for i in range(12)}},
        config={"benchmark": "mmlu"}, model_ref="builtin:tiny", timings={"run_s": 1.25},
    )
    path = result.save(tmp_path / "nested" / "result.json")
    assert json.loads(path.read_text())["metrics"]["acc_stderr"] is None  # strict JSON
    loaded = EvaluationResult.load(path)
    assert loaded.metrics["acc"] == 0.5 and math.isnan(loaded.metrics["acc_stderr"])
    assert (loaded.details, loaded.config, loaded.timings, loaded.created_at) == (
        result.details, result.config, result.timings, result.created_at)
    table = loaded.summary_table()
    assert "acc " in table and "0.5000" in table and "2 more groups" in table
    with pytest.raises(AutotrainError, match="does not exist"):
        EvaluationResult.load(tmp_path / "missing.json")


def test_metric_names_and_arguments_are_checked_at_construction():
    with pytest.raises(AutotrainError, match="metrics: metric 'f2' is not known"):
        EvaluationConfig(data_path="x.jsonl", metrics=["f2"])
    with pytest.raises(AutotrainError, match="bad arguments"):
        EvaluationConfig(data_path="x.jsonl", metrics=["f1"], metric_kwargs={"f1": {"norm": 1}})
    with pytest.raises(AutotrainError, match="metric_kwargs has entries"):
        Evaluator("builtin:tiny", data_path="x.jsonl", metrics=["f1"],
                  metric_kwargs={"bertscore": {}})
    with pytest.raises(AutotrainError, match="row_format='chat' is unknown"):
        EvaluationConfig(data_path="x.jsonl", row_format="chat")
    with pytest.raises(AutotrainError, match="column_mapping must map"):
        EvaluationConfig(data_path="x.jsonl", column_mapping={"question": 1})
    assert EvaluationConfig(data_path="x.jsonl", metrics=["f1"]).task == "generation"


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if the evaluator gets as far as loading its model."""
    def refuse(self, ref):
        raise AssertionError("the model was loaded before the error")

    monkeypatch.setattr(Evaluator, "_load_reference", refuse)


def test_data_and_metric_errors_come_before_the_model_loads(tmp_path, chat_file, no_model_load):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for task in ("generation", "language_modeling"):
        with pytest.raises(AutotrainError, match=f"{empty}: the file has no rows"):
            Evaluator("builtin:tiny", task=task, data_path=str(empty)).run()
    with pytest.raises(AutotrainError, match="bertscore: cannot load"):
        Evaluator("builtin:tiny", data_path=chat_file, metrics=["bertscore"],
                  metric_kwargs={"bertscore": {"model_name_or_path": str(tmp_path / "no")}}).run()


def _qa_file(tmp_path) -> str:
    """The fixture chats as a CSV whose columns match no row format (question, answer)."""
    import csv

    path = tmp_path / "qa.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "answer"])
        for row in CHATS[::2]:  # single-turn chats
            writer.writerow([m["content"] for m in row["messages"]])
    return str(path)


def test_column_mapping_and_row_format_change_what_is_read(tmp_path, chat_file):
    qa = _qa_file(tmp_path)
    mapping = {"question": "prompt", "answer": "completion"}
    with pytest.raises(AutotrainError, match="cannot tell the row format"):
        Evaluator("builtin:tiny", data_path=qa).run()
    mapped = Evaluator("builtin:tiny", data_path=qa, column_mapping=mapping).run()
    same_chats = tmp_path / "single_turn.jsonl"
    same_chats.write_text("".join(json.dumps(row) + "\n" for row in CHATS[::2]))
    reference = Evaluator("builtin:tiny", data_path=str(same_chats)).run()
    assert mapped.metrics["perplexity"] == pytest.approx(reference.metrics["perplexity"], rel=1e-6)

    generated = Evaluator("builtin:tiny", data_path=qa, column_mapping=mapping,
                          metrics=["exact_match"], sampling={"max_new_tokens": 2},
                          predictions_path=str(tmp_path / "p.jsonl")).run()
    records = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["reference"] for r in records] == ["5", CHATS[2]["messages"][1]["content"]]
    assert generated.config["column_mapping"] == mapping

    # Columns that fit two formats (messages and text): auto refuses, row_format decides.
    both = tmp_path / "both.jsonl"
    both.write_text("".join(json.dumps({**row, "text": "plain words"}) + "\n" for row in CHATS))
    with pytest.raises(AutotrainError, match="fit several row formats"):
        Evaluator("builtin:tiny", data_path=str(both)).run()
    as_chats = Evaluator("builtin:tiny", data_path=str(both), row_format="messages").run()
    as_text = Evaluator("builtin:tiny", data_path=str(both), row_format="text").run()
    as_before = Evaluator("builtin:tiny", data_path=chat_file).run()
    assert as_chats.metrics["perplexity"] == pytest.approx(as_before.metrics["perplexity"],
                                                           rel=1e-6)
    assert as_text.details["tokens"] != as_chats.details["tokens"]
