"""Deterministic synthetic datasets, so that configs and tests run offline as they are.

Every generator returns plain rows (dicts) in one of the row formats of ``data.formats`` and is
reachable from a config through a ``synthetic:<name>?key=value&...`` reference, for example
``synthetic:arithmetic?n=2000&n_valid=200&split=train&seed=0``.
"""

from __future__ import annotations

import inspect
import json
import math
import random
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from autotrain_pl.arithmetic import calculator
from autotrain_pl.errors import AutotrainError

SYNTHETIC_PREFIX = "synthetic:"
_OPS: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
}


def _operand_range(digits: int) -> range:
    if digits < 1:
        raise AutotrainError(f"synthetic arithmetic digits={digits} must be at least 1")
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return range(low, 10**digits)


def _check_ops(ops: str) -> str:
    unknown = sorted(set(ops) - set(_OPS))
    if not ops or unknown:
        raise AutotrainError(
            f"synthetic arithmetic ops={ops!r} has unknown operators {unknown}; use characters of '+-*'"
        )
    return ops


def _problem(a: int, op: str, b: int, system_prompt: str | None) -> dict[str, Any]:
    answer = str(_OPS[op](a, b))
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages += [
        {"role": "user", "content": f"What is {a} {op} {b}?"},
        {"role": "assistant", "content": answer},
    ]
    return {"messages": messages, "reference": answer}


def _sample_pairs(rng: random.Random, pool: list[int], n: int) -> list[int]:
    """``n`` distinct pair indices from ``pool`` when it is large enough, else with repeats."""
    if n <= len(pool):
        return rng.sample(pool, n)
    return [rng.choice(pool) for _ in range(n)]


def arithmetic_splits(
    n_train: int,
    n_valid: int,
    seed: int = 0,
    digits: int = 2,
    ops: str = "+",
    system_prompt: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and validation arithmetic chats whose operand pairs are disjoint.

    A held-out accuracy only measures generalisation if no held-out question was trained on, so
    validation pairs are drawn first and removed from the pool that training draws from.
    """
    operands = _operand_range(digits)
    ops = _check_ops(ops)
    n_pairs = len(operands) ** 2
    if n_valid >= n_pairs:
        raise AutotrainError(
            f"synthetic arithmetic n_valid={n_valid} leaves no operand pairs for training "
            f"({n_pairs} exist with digits={digits}); lower n_valid or raise digits"
        )
    rng = random.Random(seed)
    all_pairs = list(range(n_pairs))
    valid_ids = rng.sample(all_pairs, n_valid)
    held_out = set(valid_ids)
    train_ids = _sample_pairs(rng, [p for p in all_pairs if p not in held_out], n_train)

    def rows(pair_ids: list[int]) -> list[dict[str, Any]]:
        out = []
        for pair in pair_ids:
            a, b = divmod(pair, len(operands))
            out.append(_problem(operands[a], rng.choice(ops), operands[b], system_prompt))
        return out

    return rows(train_ids), rows(valid_ids)


def arithmetic(
    n: int = 1000,
    seed: int = 0,
    digits: int = 2,
    ops: str = "+",
    split: str = "train",
    n_valid: int = 0,
    system_prompt: str | None = None,
) -> list[dict[str, Any]]:
    """Arithmetic Q&A chats ("What is 37 + 58?" -> "95") with the answer as ``reference``.

    With ``n_valid > 0``, ``split="valid"`` returns the ``n_valid`` held-out rows and
    ``split="train"`` the ``n`` training rows of :func:`arithmetic_splits` for the same seed.
    """
    if split not in ("train", "valid"):
        raise AutotrainError(f"synthetic arithmetic split={split!r} is unknown; use train or valid")
    train, valid = arithmetic_splits(n, n_valid, seed, digits, ops, system_prompt)
    return train if split == "train" else valid


def preference(
    n: int = 1000,
    seed: int = 0,
    digits: int = 2,
    ops: str = "+",
    split: str = "train",
    n_valid: int = 0,
) -> list[dict[str, Any]]:
    """Arithmetic preference pairs: the correct answer is chosen, a near miss (off by 1 to 10)
    is rejected, with the answer as ``reference``.

    ``n_valid`` and ``split`` hold out questions exactly as :func:`arithmetic` does, so the same
    seed gives the same held-out questions as SFT data.
    """
    rng = random.Random(seed)
    rows = []
    for row in arithmetic(n=n, seed=seed, digits=digits, ops=ops, split=split, n_valid=n_valid):
        answer = int(row["reference"])
        wrong = answer + rng.choice([-1, 1]) * rng.randint(1, 10)
        rows.append(
            {
                "prompt": row["messages"][-2]["content"],
                "chosen": str(answer),
                "rejected": str(wrong),
                "reference": row["reference"],
            }
        )
    return rows


def unpaired_preference(
    n: int = 1000,
    seed: int = 0,
    digits: int = 2,
    ops: str = "+",
    split: str = "train",
    n_valid: int = 0,
) -> list[dict[str, Any]]:
    """KTO's unpaired feedback from the arithmetic pairs of :func:`preference`: each question
    once, with the correct answer (label true) or the near miss (label false), alternating."""
    rows = preference(n=n, seed=seed, digits=digits, ops=ops, split=split, n_valid=n_valid)
    return [{"prompt": row["prompt"], "completion": row["chosen" if i % 2 == 0 else "rejected"],
             "label": i % 2 == 0, "reference": row["reference"]} for i, row in enumerate(rows)]


def rl_prompts(
    n: int = 1000,
    seed: int = 0,
    digits: int = 2,
    ops: str = "+",
    system_prompt: str | None = None,
) -> list[dict[str, Any]]:
    """RL prompts: the question alone as ``messages`` with the answer as ``reference``."""
    rows = arithmetic(n=n, seed=seed, digits=digits, ops=ops, system_prompt=system_prompt)
    return [{"messages": row["messages"][:-1], "reference": row["reference"]} for row in rows]


def _guess_question(low: int, high: int) -> str:
    if not low < high:
        raise AutotrainError(f"synthetic:guess_number: low={low} must be below high={high}")
    return (f"I am thinking of a whole number from {low} to {high}. Guess it: reply with one "
            "number, and I will say higher or lower.")


def guess_hint(guess: int, secret: int) -> str:
    """The game's answer to a wrong guess (the RL environment gives the same)."""
    return "Higher." if guess < secret else "Lower."


def guess_number(n: int = 1000, seed: int = 0, low: int = 1, high: int = 16
                 ) -> list[dict[str, Any]]:
    """Guess-the-number games for RL (``rl_env_type: guess_number``): the opening message with
    the secret as the reply, which becomes each problem's reference."""
    question = _guess_question(low, high)
    rng = random.Random(seed)
    return [{"messages": [{"role": "user", "content": question},
                          {"role": "assistant", "content": str(rng.randint(low, high))}]}
            for _ in range(n)]


def guess_number_games(n: int = 1000, seed: int = 0, low: int = 1, high: int = 16
                       ) -> list[dict[str, Any]]:
    """Whole games of guess the number, for SFT, by a player that follows the hints but guesses
    at random within what they allow: it always wins, in about 2 ln(range) turns where halving
    the range would take log2(range), so RL has turns to save (``rl_env_type: guess_number``
    plays the same game with the same hints)."""
    question = _guess_question(low, high)
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        secret, lo, hi = rng.randint(low, high), low, high
        messages = [{"role": "user", "content": question}]
        while True:
            guess = rng.randint(lo, hi)
            messages.append({"role": "assistant", "content": str(guess)})
            if guess == secret:
                break
            messages.append({"role": "user", "content": guess_hint(guess, secret)})
            lo, hi = (guess + 1, hi) if guess < secret else (lo, guess - 1)
        rows.append({"messages": messages})
    return rows


def tool_use(n: int = 1000, seed: int = 0, digits: int = 3, ops: str = "*",
             split: str = "train", n_valid: int = 0) -> list[dict[str, Any]]:
    """Calculator tool-use chats (``rl_env_type: tool_use``): the question, an assistant turn
    that calls ``calculator`` on its expression, the tool's result and the answer. ``tools``
    holds the calculator's schema as a JSON string; ``split``/``n_valid`` hold out questions as
    :func:`arithmetic` does."""
    from autotrain_pl.rendering.tools import as_tool_schemas

    tools = json.dumps(as_tool_schemas([calculator]))
    rows = []
    for row in arithmetic(n=n, seed=seed, digits=digits, ops=ops, split=split, n_valid=n_valid):
        question, answer = row["messages"][0]["content"], row["reference"]
        expression = question.removeprefix("What is ").removesuffix("?")
        call = {"type": "function",
                "function": {"name": "calculator", "arguments": {"expression": expression}}}
        rows.append({"messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "content": calculator(expression), "name": "calculator"},
            {"role": "assistant", "content": answer},
        ], "tools": tools})
    return rows


_WORDS = (
    "the model learns to answer questions about data code time people world system work "
    "life day year way part number water city story fact month lot study book eye job word "
    "business issue side kind head house service friend power hour game line end member law "
    "car name team minute idea body information back face level office door health person art "
    "war history party result change morning reason research girl guy moment air teacher force "
    "education simple small large early young important few public bad same able good new first "
    "last long great little own other old right big high different local sure clear whole "
    "make know take see come think look want give use find tell ask seem feel try leave call "
    "because while where after before about between under again still often always never"
).split()


def mixed_chat(
    n: int = 1000, seed: int = 0, median_words: int = 90, sigma: float = 0.9
) -> list[dict[str, Any]]:
    """Chats with a long-tailed, roughly log-normal length mix (short Q&A to long multi-turn).

    Used to measure padding waste: real chat data mixes one-line answers with long threads.
    Lengths are in words (about 1.2 tokens each with the builtin tokenizer), clipped to
    ``[12, 800]`` words.
    """
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        total = int(min(800, max(12, rng.lognormvariate(math.log(median_words), sigma))))
        turns = 1 if total < 60 else min(6, 1 + total // 120)
        per_turn = max(6, total // turns)
        messages = []
        for _ in range(turns):
            question = max(3, int(per_turn * rng.uniform(0.15, 0.4)))
            messages.append({"role": "user", "content": " ".join(rng.choices(_WORDS, k=question))})
            answer = " ".join(rng.choices(_WORDS, k=max(3, per_turn - question)))
            messages.append({"role": "assistant", "content": answer})
        rows.append({"messages": messages})
    return rows


SYNTHETIC_GENERATORS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "arithmetic": arithmetic,
    "preference": preference,
    "unpaired_preference": unpaired_preference,
    "rl_prompts": rl_prompts,
    "guess_number": guess_number,
    "guess_number_games": guess_number_games,
    "tool_use": tool_use,
    "mixed_chat": mixed_chat,
}


def is_synthetic_ref(ref: str | None) -> bool:
    return isinstance(ref, str) and ref.startswith(SYNTHETIC_PREFIX)


def parse_synthetic_ref(ref: str) -> tuple[Callable[..., list[dict[str, Any]]], dict[str, Any]]:
    """Resolve ``synthetic:name?key=value&...`` to a generator and typed keyword arguments.

    The query is split by hand (no ``+`` to space decoding) so ``ops=+-`` means what it says.
    """
    body = ref[len(SYNTHETIC_PREFIX) :]
    name, _, query = body.partition("?")
    if name not in SYNTHETIC_GENERATORS:
        known = ", ".join(sorted(SYNTHETIC_GENERATORS))
        raise AutotrainError(f"{ref!r}: unknown synthetic generator {name!r}; use one of: {known}")
    generator = SYNTHETIC_GENERATORS[name]
    params = inspect.signature(generator).parameters
    kwargs: dict[str, Any] = {}
    for item in filter(None, query.split("&")):
        key, sep, raw = item.partition("=")
        if not sep or key not in params:
            accepted = ", ".join(params)
            raise AutotrainError(
                f"{ref!r}: bad parameter {item!r}; write key=value with keys among: {accepted}"
            )
        default = params[key].default
        value = unquote(raw)
        try:
            kwargs[key] = type(default)(value) if isinstance(default, int | float) else value
        except ValueError:
            raise AutotrainError(
                f"{ref!r}: parameter {key}={value!r} must be a {type(default).__name__}"
            ) from None
    return generator, kwargs


def synthetic_rows(ref: str) -> list[dict[str, Any]]:
    """The rows a ``synthetic:`` reference stands for."""
    generator, kwargs = parse_synthetic_ref(ref)
    return generator(**kwargs)


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write rows as JSON Lines (one object per line), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
