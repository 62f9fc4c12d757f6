"""``aitrain eval`` through ``eval_command(argv)`` on the fixture files and builtin:tiny."""

import io
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from autotrain_pl.evaluation import EvaluationResult  # noqa: E402
from autotrain_pl.evaluation.commands import eval_command  # noqa: E402

FIXTURES = Path(__file__).parents[2] / "fixtures" / "benchmarks"
CHATS = [
    {"messages": [{"role": "user", "content": "What is 2+3?"},
                  {"role": "assistant", "content": "5"}]},
    {"messages": [{"role": "user", "content": "Say hello"},
                  {"role": "assistant", "content": "Hello there."}]},
]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def chat_file(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in CHATS))
    return str(path)


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    code = eval_command(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_benchmark_prints_a_table_and_writes_json(tmp_path):
    output = tmp_path / "mmlu.json"
    code, out, err = run(["--model", "builtin:tiny", "--benchmark", "mmlu",
                          "--data", str(FIXTURES / "mmlu"), "--limit", "3", "--num_fewshot", "2",
                          "--batch_size", "2", "--output", str(output)])
    assert code == 0, err
    assert "mmlu | model: builtin:tiny" in out and "acc" in out and f"wrote {output}" in out
    result = EvaluationResult.load(output)
    assert result.details["num_docs"] == 3 and result.details["num_fewshot"] == 2
    assert result.config["limit"] == 3 and 0.0 <= result.metrics["acc"] <= 1.0


def test_generation_metrics_with_predictions(tmp_path, chat_file):
    output, predictions = tmp_path / "gen.json", tmp_path / "pred.jsonl"
    code, out, err = run(["--model", "builtin:tiny", "--dataset", chat_file,
                          "--metrics", "bleu,rougeL", "--max_new_tokens", "4",
                          "--predictions", str(predictions), "--output", str(output)])
    assert code == 0, err
    result = EvaluationResult.load(output)
    assert result.task == "generation" and set(result.metrics) >= {"bleu", "rougeL"}
    assert len(predictions.read_text().splitlines()) == 2
    assert "rougeL" in out


def test_language_modeling_writes_to_eval_results_by_default(tmp_path, chat_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["--model", "builtin:tiny", "--dataset", chat_file,
                          "--task", "language_modeling"])
    assert code == 0, err
    written = list((tmp_path / "eval_results").glob("*.json"))
    assert len(written) == 1 and "perplexity" in out
    assert EvaluationResult.load(written[0]).metrics["perplexity"] > 1.0


@pytest.mark.parametrize(("argv", "message"), [
    (["--benchmark", "gsm8k"], "benchmark 'gsm8k' is not known"),
    (["--benchmark", "mmlu", "--data", str(FIXTURES / "bad_mmlu")], "missing columns"),
    (["--benchmark", "truthfulqa_mc2", "--num_fewshot", "3"], "set num_fewshot=0"),
    ([], "--benchmark NAME, or --dataset PATH"),
])
def test_user_errors_are_one_line_and_exit_2(argv, message):
    code, out, err = run(["--model", "builtin:tiny", *argv])
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
