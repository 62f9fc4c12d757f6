"""Read an ``aitrain llm`` command line the way the guide writes it: ``--flag value``,
``--flag=value``, bare booleans (``--peft``), ``--no-flag`` and ``--flag false``.

An unknown flag is one line naming the nearest known one (difflib); a bad value is one line
naming its flag.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.llm.flags import BY_NAME
from autotrain_pl.llm.spec import FALSE_WORDS, TRUE_WORDS, Flag


@dataclass
class ParsedArgs:
    """The flags given on the command line, by canonical name, with their typed values."""

    values: dict[str, Any] = field(default_factory=dict)
    spelled: dict[str, str] = field(default_factory=dict)  # canonical name -> as typed
    help: bool = False

    def given(self, name: str) -> bool:
        return name in self.values

    def value(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)


def parse_argv(argv: Sequence[str]) -> ParsedArgs:
    """The typed values of ``argv``; raises ``AutotrainError`` on an unknown flag, a missing or
    bad value, a flag given twice, or a stray word."""
    parsed = ParsedArgs()
    tokens = list(argv)
    index = 0
    bare: str | None = None  # a boolean flag given without a value just before
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token in ("-h", "--help"):
            parsed.help = True
            continue
        if not token.startswith("--") or token == "--":
            if bare is not None:
                raise AutotrainError(f"{bare} {token}: not a boolean; write {bare} (true), "
                                     f"{bare} false or --no-{bare[2:]}")
            raise AutotrainError(f"unexpected argument {token!r}: aitrain llm takes --flag "
                                 "value pairs (a value with spaces needs quotes)")
        bare = None
        name, has_value, inline = token[2:].partition("=")
        name = name.replace("_", "-")
        flag, negated = _lookup(name)
        if negated and has_value:
            raise AutotrainError(f"--{name} takes no value; write --{name[3:]} {inline}")
        if flag.kind == "bool":
            if negated:
                raw: str | bool = False
            elif has_value:
                raw = inline
            elif index < len(tokens) and tokens[index].lower() in TRUE_WORDS | FALSE_WORDS:
                raw, index = tokens[index], index + 1
            else:
                raw, bare = True, f"--{name}"
        elif has_value:
            raw = inline
        elif index < len(tokens) and not _looks_like_flag(tokens[index]):
            raw, index = tokens[index], index + 1
        else:
            raise AutotrainError(f"--{name} needs a value ({flag.kind}), e.g. --{flag.name} "
                                 f"{_example(flag)}")
        if flag.name in parsed.values:
            raise AutotrainError(f"--{name} is given twice ({parsed.spelled[flag.name]} "
                                 "already set it); keep one")
        parsed.values[flag.name] = flag.parse(raw)
        parsed.spelled[flag.name] = f"--{name}"
    return parsed


def _lookup(name: str) -> tuple[Flag, bool]:
    """The flag ``--name`` means and whether it was negated (``--no-peft``)."""
    if name in BY_NAME:
        return BY_NAME[name], False
    if name.startswith("no-") and name[3:] in BY_NAME and BY_NAME[name[3:]].kind == "bool":
        return BY_NAME[name[3:]], True
    known = list(BY_NAME) + [f"no-{n}" for n, f in BY_NAME.items() if f.kind == "bool"]
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean --{near[0]}?" if near else "; aitrain llm --help lists the flags"
    raise AutotrainError(f"unknown flag --{name}{hint}")


def _looks_like_flag(token: str) -> bool:
    """``--x`` is a flag; ``-1e-5`` and ``-1`` are values."""
    if token.startswith("--"):
        return True
    return token.startswith("-") and not _is_number(token)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _example(flag: Flag) -> str:
    import json

    if flag.kind == "json":
        return f"'{json.dumps(flag.example)}'"
    return str(flag.example)
