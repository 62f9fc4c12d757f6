"""What one flag of the "aitraining" guide is: its name, type, the guide's default, and what it
becomes here (a config key, a group translation, a no-op, or a refusal with its reason).

The table of all flags is ``flags.FLAGS``; this module holds the record type and value parsing,
so that the table reads as data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from autotrain_pl.errors import AutotrainError

#: Flag types: how a command-line string becomes a value.
KINDS = ("bool", "int", "float", "str", "json")
#: The words a boolean flag takes after it (``--peft false``); bare ``--peft`` means true.
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})
#: Every trainer ``aitrain llm`` accepts (the guide's, plus ``grpo``).
TRAINERS = ("sft", "default", "distillation", "dpo", "orpo", "reward", "ppo", "grpo")
#: Trainers that step their optimizer themselves (Lightning manual optimization).
MANUAL_OPTIMIZATION = frozenset({"ppo", "grpo"})
#: Trainers that train on preference pairs.
PAIR_TRAINERS = frozenset({"dpo", "orpo", "reward"})
#: Trainers of the supervised family (chat or text rows, token cross-entropy).
SFT_TRAINERS = frozenset({"sft", "default", "distillation"})


@dataclass(frozen=True)
class Flag:
    """One ``aitrain llm`` flag.

    Args:
        name: the guide's spelling without ``--`` (``lr``, ``data-path``).
        kind: one of ``KINDS``.
        group: the guide's section, for ``--help`` and the README table.
        default: the guide's stated default, applied when the flag is not given and applies
            (its trainer and switch); None: the guide states none, or ours applies.
        key: our config key (dotted), or per trainer ``{trainer: key}``, when the value maps
            one to one; None when a group translation in ``translate.py`` handles it.
        convert: value -> config value for ``key`` (e.g. ``fp16`` -> ``16-mixed``).
        choices: the accepted values, checked before anything else.
        trainers: the trainers it applies to (None: all); another trainer is an error naming
            both.
        needs: the switch flag it works under (``use-distillation``, ``peft``, ...); given
            without it is an error.
        noop: values accepted with no effect because they describe what we do anyway.
        refused: why the flag (any value outside ``noop``) is not supported here.
        aliases: other spellings that mean this flag.
        example: a valid value, for tests and the README table.
        ours: not in the guide: an ``aitrain llm`` addition.
        maps_to: what it becomes, in words, for the README table (when ``key`` does not say).
    """

    name: str
    kind: str
    group: str
    default: Any = None
    key: str | Mapping[str, str] | None = None
    convert: Callable[[Any], Any] | None = None
    choices: tuple[Any, ...] | None = None
    trainers: frozenset[str] | None = None
    needs: str | None = None
    noop: tuple[Any, ...] = ()
    refused: str | None = None
    aliases: tuple[str, ...] = ()
    example: Any = None
    ours: bool = False
    maps_to: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"flag --{self.name}: kind {self.kind!r} is not one of {KINDS}")

    @property
    def attr(self) -> str:
        """The flag as a Python name (``data_path``): the guide's ``LLMTrainingParams`` field."""
        return self.name.replace("-", "_")

    def key_for(self, trainer: str) -> str | None:
        """Our config key for this flag under ``trainer`` (None: a group translation)."""
        if isinstance(self.key, Mapping):
            return self.key.get(trainer)
        return self.key

    def applies_to(self, trainer: str) -> bool:
        return self.trainers is None or trainer in self.trainers

    def parse(self, raw: str | bool) -> Any:
        """The value of ``--name raw``, checked against the type and the choices."""
        value = parse_value(self, raw)
        if self.choices is not None and value not in self.choices:
            raise AutotrainError(f"--{self.name} {raw}: use one of "
                                 f"{', '.join(map(str, self.choices))}")
        return value

    def refuses(self, value: Any) -> bool:
        """Whether ``value`` asks for something this engine does not do."""
        return self.refused is not None and value not in self.noop


def parse_value(flag: Flag, raw: str | bool) -> Any:
    """``raw`` as the flag's type; a bad value is a one-line error naming the flag."""
    if isinstance(raw, bool):
        if flag.kind != "bool":
            raise AutotrainError(f"--{flag.name} needs a value ({flag.kind})")
        return raw
    text = raw.strip()
    if flag.kind == "bool":
        word = text.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise AutotrainError(f"--{flag.name} {raw}: not a boolean; write --{flag.name} "
                             f"(true), --{flag.name} false or --no-{flag.name}")
    if flag.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise AutotrainError(f"--{flag.name} {raw}: not a whole number") from None
    if flag.kind == "float":
        try:
            return float(text)
        except ValueError:
            raise AutotrainError(f"--{flag.name} {raw}: not a number") from None
    if flag.kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise AutotrainError(f"--{flag.name}: not valid JSON ({error.msg} at column "
                                 f"{error.colno}): {raw}") from None
    return raw


def optional_text(value: str | None) -> str | None:
    """The guide's ``None``/``none``/empty meaning "not set"."""
    if value is None or value.strip().lower() in ("", "none", "null"):
        return None
    return value
