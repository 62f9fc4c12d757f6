"""One Evaluator run gives perplexity and generation metrics together; rows in memory (a list or
a ``datasets.Dataset``) give the numbers the same rows give from a file."""

import json

import datasets
import pytest

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation import Evaluator
from autotrain_pl.models import load_model, load_tokenizer
from autotrain_pl.rendering import Conversation, Message

ROWS = [
    {"messages": [{"role": "user", "content": "What is 2+3?"},
                  {"role": "assistant", "content": "5"}]},
    {"messages": [{"role": "user", "content": "Name a color."},
                  {"role": "assistant", "content": "Blue is a color."}]},
    {"messages": [{"role": "user", "content": "Say hello"},
                  {"role": "assistant", "content": "Hello there, friend."}]},
]
OPTIONS = {"batch_size": 2, "sampling": {"max_new_tokens": 6}, "chat_format": "chatml"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    """One (model, tokenizer) for every evaluator here: the numbers must not depend on loading."""
    return load_model("builtin:tiny").eval(), load_tokenizer("builtin:tiny")


@pytest.fixture
def chat_file(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return str(path)


def test_perplexity_and_bleu_in_one_run_equal_two_separate_runs(model, chat_file):
    both = Evaluator(model, data_path=chat_file, metrics="perplexity,bleu,rouge", **OPTIONS).run()
    ppl = Evaluator(model, data_path=chat_file, metrics=["perplexity"], batch_size=2,
                    chat_format="chatml").run()
    text = Evaluator(model, data_path=chat_file, metrics=["bleu", "rouge"], **OPTIONS).run()
    assert both.task == "generation" and ppl.task == "language_modeling"
    assert both.metrics == pytest.approx({**ppl.metrics, **text.metrics}, rel=1e-9)
    assert set(both.metrics) == {"perplexity", "nll", "bleu", "rouge1", "rouge2", "rougeL"}
    assert both.details["num_samples"] == 3 and both.details["tokens"] == ppl.details["tokens"]


def test_a_list_a_dataset_and_the_file_give_the_same_numbers(model, chat_file):
    evaluator = Evaluator(model, metrics=["perplexity", "rougeL"], **OPTIONS)
    from_list = evaluator.evaluate(ROWS)
    from_dataset = evaluator.evaluate(datasets.Dataset.from_list(ROWS))
    from_file = Evaluator(model, data_path=chat_file, metrics=["perplexity", "rougeL"],
                          **OPTIONS).run()
    assert from_list.metrics == from_dataset.metrics == from_file.metrics
    assert from_list.details["source"] == "<in-memory rows>"
    messages = [[Message(**m) for m in row["messages"]] for row in ROWS]
    assert evaluator.evaluate(messages).metrics == from_file.metrics  # message lists
    assert evaluator.evaluate([Conversation(m) for m in messages]).metrics == from_file.metrics


def test_in_memory_errors_are_one_line(model):
    evaluator = Evaluator(model, metrics=["perplexity"], chat_format="chatml")
    with pytest.raises(AutotrainError, match="list of rows"):
        evaluator.evaluate("What is 2+3?")
    with pytest.raises(AutotrainError, match="row 1 is a int"):
        evaluator.evaluate([ROWS[0], 7])
    with pytest.raises(AutotrainError, match="no rows"):
        evaluator.evaluate([])
    with pytest.raises(AutotrainError, match="own data"):
        Evaluator(model, benchmark="arc_easy").evaluate(ROWS)
