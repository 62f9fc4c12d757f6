"""Synthetic generators: deterministic, disjoint held-out splits, reachable by reference."""

from __future__ import annotations

import json

import pytest

from autotrain_pl.data import arithmetic, arithmetic_splits, mixed_chat, synthetic_rows, write_jsonl
from autotrain_pl.data.synthetic import parse_synthetic_ref
from autotrain_pl.errors import AutotrainError


def _question(row):
    return row["messages"][-2]["content"]


def test_arithmetic_rows_are_correct_and_deterministic():
    rows = arithmetic(n=50, seed=0, ops="+-*")
    assert rows == arithmetic(n=50, seed=0, ops="+-*")
    assert rows != arithmetic(n=50, seed=1, ops="+-*")
    for row in rows:
        a, op, b = _question(row)[len("What is ") : -1].split(" ")
        assert row["reference"] == str(eval(f"{a}{op}{b}"))  # noqa: S307 - test-only check
        assert row["messages"][-1] == {"role": "assistant", "content": row["reference"]}


def test_held_out_operand_pairs_never_appear_in_training():
    train, valid = arithmetic_splits(2000, 200, seed=0, ops="+-")

    def pairs(rows):
        return {tuple(_question(r)[len("What is ") : -1].split(" ")[::2]) for r in rows}

    assert len(valid) == 200 and len(train) == 2000
    assert not pairs(train) & pairs(valid)
    assert synthetic_rows("synthetic:arithmetic?n=2000&n_valid=200&ops=+-&split=valid") == valid


def test_references_parse_typed_parameters():
    generator, kwargs = parse_synthetic_ref("synthetic:arithmetic?n=10&digits=3&ops=+*")
    assert generator is arithmetic and kwargs == {"n": 10, "digits": 3, "ops": "+*"}
    rows = synthetic_rows("synthetic:preference?n=5&seed=2")
    assert all(r["chosen"] == r["reference"] != r["rejected"] for r in rows)
    rl = synthetic_rows("synthetic:rl_prompts?n=3")
    assert all(r["messages"][-1]["role"] == "user" and r["reference"] for r in rl)


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        ("synthetic:nope", "unknown synthetic generator 'nope'"),
        ("synthetic:arithmetic?bogus=1", "bad parameter 'bogus=1'"),
        ("synthetic:arithmetic?n=ten", "n='ten' must be a int"),
        ("synthetic:arithmetic?ops=/", "unknown operators"),
    ],
)
def test_bad_references(ref, match):
    with pytest.raises(AutotrainError, match=match):
        synthetic_rows(ref)


def test_mixed_chat_is_long_tailed():
    rows = mixed_chat(n=400, seed=0)
    words = sorted(sum(len(m["content"].split()) for m in r["messages"]) for r in rows)
    assert words[0] >= 12 and words[-1] > 5 * words[len(words) // 2]


def test_write_jsonl(tmp_path):
    path = write_jsonl([{"a": 1}, {"b": "é"}], tmp_path / "sub" / "x.jsonl")
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"a": 1}, {"b": "é"}]


def test_guess_number_games_follow_the_hints_and_always_win():
    games = synthetic_rows("synthetic:guess_number_games?n=300&low=1&high=16")
    turns = []
    for game in games:
        messages = game["messages"]
        guesses = [int(m["content"]) for m in messages[1::2]]
        hints = [m["content"] for m in messages[2::2]]
        low, high, secret = 1, 16, guesses[-1]
        for guess, hint in zip(guesses, hints, strict=False):
            assert low <= guess <= high  # never a guess the hints already ruled out
            assert hint == ("Higher." if guess < secret else "Lower.")
            low, high = (guess + 1, high) if hint == "Higher." else (low, guess - 1)
        assert low <= guesses[-1] <= high and len(hints) == len(guesses) - 1
        turns.append(len(guesses))
    assert 3.5 < sum(turns) / len(turns) < 5  # about 2 ln 16 - 1.3: slower than halving (3.4)


def test_tool_use_rows_call_the_calculator_on_the_question():
    (row,) = synthetic_rows("synthetic:tool_use?n=1&digits=3")
    user, call, result, answer = row["messages"]
    expression = call["tool_calls"][0]["function"]["arguments"]["expression"]
    a, op, b = expression.split()
    assert user["content"] == f"What is {expression}?" and op == "*"
    assert result["content"] == answer["content"] == str(int(a) * int(b))
    assert json.loads(row["tools"])[0]["function"]["name"] == "calculator"
