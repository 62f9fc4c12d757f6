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
    (["--benchmark", "truthfulqa_mc2", "--num_fewshot", "3"], "set --num_fewshot=0"),
    ([], "--benchmark NAME, or --dataset PATH"),
])
def test_user_errors_are_one_line_and_exit_2(argv, message):
    code, out, err = run(["--model", "builtin:tiny", *argv])
    assert code == 2 and out == ""
    assert err.startswith("aitrain: error: ") and message in err and err.count("\n") == 1



# -- issue 12: empty data, hints that name this command's flags, metric checks before loading ----


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if ``aitrain eval`` gets as far as loading the model."""
    from autotrain_pl.evaluation.evaluator import Evaluator

    def refuse(self, ref):
        raise AssertionError("the model was loaded before the error")

    monkeypatch.setattr(Evaluator, "_load_reference", refuse)


def _one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2 and out == "", err
    assert err.startswith("aitrain: error: ") and err.count("\n") == 1
    return err[len("aitrain: error: "):].strip()


def test_an_empty_data_file_through_the_aitrain_entry_point(tmp_path, capsys, no_model_load):
    from autotrain_pl.cli import run_cli

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code = run_cli(["eval", "--model", "builtin:tiny", "--dataset", str(empty)])
    captured = capsys.readouterr()
    message = _one_line_error(code, captured.out, captured.err)
    assert message.startswith(f"{empty}: the file has no rows")


@pytest.mark.parametrize(("argv", "message"), [
    (["--metrics", "f2"], "--metrics: metric 'f2' is not known; use one of: "),
    (["--metrics", "bleu,chrf", "--metric_kwargs", "{bad"], "--metric_kwargs is not valid JSON"),
    (["--metrics", "bleu", "--metric_kwargs", '["bleu"]'], "--metric_kwargs must be a JSON object"),
    (["--metric_kwargs", '{"bertscore": {}}'], "name them in --metrics too"),
    (["--metrics", "bleu", "--metric_kwargs", '{"chrf": {}}'],
     "--metric_kwargs has entries ['chrf'] that are not in --metrics ['bleu']"),
    (["--metrics", "chrf", "--metric_kwargs", '{"chrf": {"order": 4}}'],
     "--metric_kwargs: metric 'chrf': bad arguments ['order']"),
    (["--task", "language_modeling", "--metrics", "f1"], "use --task=generation for them"),
    (["--row_format", "chat"], "--row_format='chat' is unknown"),
    (["--column_mapping", '{"question": 3}'], "--column_mapping must map old column names"),
    (["--dataset", "missing.jsonl"], "--dataset='missing.jsonl' does not exist"),
])  # fmt: skip
def test_metric_and_data_option_errors_name_flags_before_the_model_loads(
        chat_file, no_model_load, argv, message):
    dataset = [] if "--dataset" in argv else ["--dataset", chat_file]
    error = _one_line_error(*run(["--model", "builtin:tiny", *dataset, *argv]))
    assert message in error


def test_f1_is_accepted_and_reported(tmp_path, chat_file):
    output = tmp_path / "f1.json"
    code, out, err = run(["--model", "builtin:tiny", "--dataset", chat_file, "--metrics",
                          "f1,chrf,chrf++", "--max_new_tokens", "2", "--output", str(output)])
    assert code == 0, err
    assert set(EvaluationResult.load(output).metrics) == {"f1", "chrf", "chrf++"}


def test_unknown_columns_hint_names_eval_flags_and_following_it_works(tmp_path):
    import shlex

    qa = tmp_path / "qa.csv"
    qa.write_text("question,answer\nWhat is 2+3?,5\nSay hello,Hello there.\n")
    message = _one_line_error(*run(["--model", "builtin:tiny", "--dataset", str(qa)]))
    assert "rename columns with --column_mapping (e.g. --column_mapping=" in message
    assert message.endswith("or set --row_format")
    assert "data.init_args" not in message
    typed = shlex.split(message.split("(e.g. ", 1)[1].split(") or set")[0])
    predictions = tmp_path / "p.jsonl"
    code, out, err = run(["--model", "builtin:tiny", "--dataset", str(qa), *typed,
                          "--metrics", "exact_match", "--max_new_tokens", "2",
                          "--predictions", str(predictions), "--output", str(tmp_path / "o.json")])
    assert code == 0, err
    references = [json.loads(line)["reference"] for line in predictions.read_text().splitlines()]
    assert references == ["5", "Hello there."]


def test_row_format_flag_picks_the_format(tmp_path):
    both = tmp_path / "both.jsonl"
    both.write_text("".join(json.dumps({**row, "text": "plain words here"}) + "\n"
                            for row in CHATS))
    message = _one_line_error(*run(["--model", "builtin:tiny", "--dataset", str(both)]))
    assert "set --row_format to the one you mean" in message
    tokens = {}
    for row_format in ("messages", "text"):
        output = tmp_path / f"{row_format}.json"
        code, out, err = run(["--model", "builtin:tiny", "--dataset", str(both), "--row_format",
                              row_format, "--task", "language_modeling", "--output", str(output)])
        assert code == 0, err
        tokens[row_format] = EvaluationResult.load(output).details["tokens"]
    assert tokens["messages"] != tokens["text"]


def test_max_length_hint_for_perplexity_names_the_flag(chat_file):
    message = _one_line_error(*run(["--model", "builtin:tiny", "--dataset", chat_file,
                                    "--task", "language_modeling", "--max_length", "2"]))
    assert "raise --max_length (now 2)" in message and "overlong_policy" not in message


@pytest.fixture
def tiny_bert(tmp_path) -> str:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = "what is 2 + 3 ? 5 say hello there . name a color".split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(words)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(tmp_path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(tmp_path)
    return str(tmp_path)


def test_bertscore_hint_names_metric_kwargs_and_following_it_works(tmp_path, chat_file,
                                                                    tiny_bert):
    import shlex

    missing = tmp_path / "no-model"
    argv = ["--model", "builtin:tiny", "--dataset", chat_file, "--metrics", "bertscore",
            "--max_new_tokens", "2", "--output", str(tmp_path / "o.json")]
    kwargs = json.dumps({"bertscore": {"model_name_or_path": str(missing)}})
    message = _one_line_error(*run([*argv, "--metric_kwargs", kwargs]))
    assert "get_metric" not in message
    typed = shlex.split(message.split("set ", 1)[1])[0]
    assert typed.startswith("--metric_kwargs=")
    flag, value = typed.split("=", 1)
    value = value.replace("/path/to/roberta-large", tiny_bert)
    code, out, err = run([*argv, flag, value])
    assert code == 0, err
    assert 0.0 <= EvaluationResult.load(tmp_path / "o.json").metrics["bertscore_f1"] <= 1.0
