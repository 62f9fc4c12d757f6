"""jsonargparse's config errors, as one line that names the key and the file and suggests a fix.

A mistyped key (``--model.init_args.learning_rte``, or ``learing_rate:`` in a YAML) makes
jsonargparse print the whole usage block and a nested "Does not validate against any of the Union
subtypes" report. ``one_line(message, argv)`` turns its message into what a user can act on::

    model.init_args.learing_rate (in configs/sft.yaml) is not an option of SFTModule; did you mean
    learning_rate?

A value of the right type can still be out of range (``trainer.max_steps: -5``).
``check_run_numbers`` refuses such Trainer and run numbers in the same one-line form before any
model loads; the model and data classes check their own arguments in ``__init__``.
"""

from __future__ import annotations

import difflib
import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.importing import import_object

_NOT_ACCEPTED = re.compile(r"Option '([^']+)' is not accepted")
_BAD_VALUE = re.compile(r"Expected a (?:<class ')?([^'>]+)'?>?\. Got value: (.*)")
_PARSER_KEY = re.compile(r'Parser key "([^"]+)"')
_CLASS_PATH = re.compile(r"Problem with given class_path '([^']+)'")
_NOT_A_CLASS = re.compile(r"Expected a dot import path string: (\S+)")
_UNRECOGNIZED = re.compile(r"unrecognized arguments: (\S+)")
_NOT_ACCEPTED_BY_SUBCOMMAND = re.compile(r"does not accept option '([^']+)'")


def init_parameters(cls: type) -> list[str]:
    """The keyword arguments a class accepts, through its ``**kwargs`` chain of base classes."""
    names: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        names += [p.name for p in parameters if p.name != "self"
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return list(dict.fromkeys(names))


def _suggestion(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _config_files(argv: Sequence[str]) -> list[str]:
    files = []
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
    return files


def _where(key: str, argv: Sequence[str]) -> str:
    """`` (in FILE)`` when the key was not typed on the command line but came from a config."""
    leaf = key.rsplit(".", 1)[-1]
    typed = any(arg.lstrip("-").split("=", 1)[0].endswith(leaf) for arg in argv
                if arg.startswith("--"))
    files = _config_files(argv)
    return f" (in {', '.join(files)})" if files and not typed else ""


def _key_path(keys: list[str]) -> str:
    """``model.init_args.lora`` from the nested parser keys ``["model", "lora"]``."""
    if keys and keys[0] in ("model", "data"):
        return ".".join([keys[0], "init_args", *keys[1:]])
    return ".".join(keys)


def _trainer_hint(shown: str, key: str, argv: Sequence[str]) -> str:
    from lightning.pytorch import Trainer

    option = key.split(".", 1)[1]
    return (f"{shown}{_where(key, argv)} is not an option of the Trainer"
            f"{_suggestion(option, init_parameters(Trainer))}")


def one_line(message: str, argv: Sequence[str]) -> str:
    """The first actionable line of a jsonargparse error message (see module docstring)."""
    message = message.strip()
    for finder in (_NOT_ACCEPTED, _BAD_VALUE):
        found = finder.search(message)
        if found is None:
            continue
        before = message[: found.start()]
        keys = _PARSER_KEY.findall(before)
        classes = _CLASS_PATH.findall(before)
        if finder is _NOT_ACCEPTED:
            option = found.group(1)
            key = _key_path([*keys, option])
            owner, candidates = (keys[-1] if keys else "this command"), []
            if classes:
                cls = import_object(classes[-1], f"{key}.class_path")
                owner, candidates = cls.__name__, init_parameters(cls)
            return f"{key}{_where(key, argv)} is not an option of {owner}" + \
                _suggestion(option, candidates)
        key = _key_path(keys)
        expected = found.group(1).rsplit(".", 1)[-1]
        return f"{key}={found.group(2).strip()}{_where(key, argv)} is not valid: expected {expected}"
    not_a_class = _NOT_A_CLASS.search(message)
    if not_a_class:
        group = (_PARSER_KEY.findall(message[: not_a_class.start()]) or ["model"])[0]
        value = not_a_class.group(1)
        field = "model_name_or_path" if group == "model" else "data_path"
        return (f"--{group} {value} is not a class path; give the {group} as "
                f"--{group}.init_args.{field} {value} (or --{group} my_pkg.module.Class)")
    unrecognized = _UNRECOGNIZED.search(message) or _NOT_ACCEPTED_BY_SUBCOMMAND.search(message)
    if unrecognized:
        flag = unrecognized.group(1)
        key = flag.lstrip("-")
        if key.startswith("trainer."):
            return _trainer_hint(flag, key, argv)
        return f"{flag} is not an option of this command{_where(key, argv)}; see --help"
    first = next((line.strip() for line in message.splitlines() if line.strip()), message)
    files = _config_files(argv)
    return first.rstrip(":") + (f" (in {', '.join(files)})" if files else "")


# -- numbers out of range, before any model loads ------------------------------------------------
def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


def _at_least(low: int) -> Callable[[object], bool]:
    return lambda v: _is_int(v) and v >= low


def _or_none(rule: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda v: v is None or rule(v)


def _batch_limit(value: object) -> bool:
    """Lightning's ``limit_*_batches``/``overfit_batches``: a count, or a fraction in [0, 1]."""
    return (_is_int(value) and value >= 0) or (_is_number(value) and 0.0 <= value <= 1.0)


def _val_check_interval(value: object) -> bool:
    if value is None or isinstance(value, str | dict | timedelta):  # time-based: Lightning's
        return True
    return (_is_int(value) and value >= 1) or (_is_number(value) and 0.0 < value <= 1.0)


def _devices(value: object) -> bool:
    if isinstance(value, str):  # "auto", "0,1": Lightning parses these; "0" is a count
        text = value.strip()
        return _devices(int(text)) if text.lstrip("-").isdigit() else True
    if isinstance(value, list | tuple):
        return bool(value) and all(_is_int(v) and v >= 0 for v in value)
    return _is_int(value) and (value == -1 or value >= 1)


#: Trainer options that are numbers: the rule and the range it allows, in words. Lightning checks
#: some of these only when the Trainer is built, after the model has loaded, and with a traceback.
TRAINER_NUMBERS: dict[str, tuple[Callable[[object], bool], str]] = {
    "max_steps": (lambda v: _is_int(v) and (v == -1 or v >= 0), "-1 (no limit) or an integer >= 0"),
    "min_steps": (_or_none(_at_least(0)), "an integer >= 0, or null"),
    "max_epochs": (_or_none(lambda v: _is_int(v) and (v == -1 or v >= 0)),
                   "-1 (no limit), an integer >= 0, or null"),
    "min_epochs": (_or_none(_at_least(0)), "an integer >= 0, or null"),
    "accumulate_grad_batches": (_at_least(1), "an integer >= 1"),
    "gradient_clip_val": (_or_none(lambda v: _is_number(v) and v >= 0),
                          "a finite number >= 0 (0 or null: no clipping)"),
    "val_check_interval": (_val_check_interval,
                           "an integer >= 1 (batches), a fraction in (0, 1] of an epoch, or a time"),
    "check_val_every_n_epoch": (_or_none(_at_least(1)), "an integer >= 1, or null"),
    "num_sanity_val_steps": (_or_none(lambda v: _is_int(v) and v >= -1),
                             "-1 (all), an integer >= 0, or null"),
    "log_every_n_steps": (_or_none(_at_least(0)), "an integer >= 0, or null"),
    "limit_train_batches": (_or_none(_batch_limit), "an integer >= 0 or a fraction in [0, 1]"),
    "limit_val_batches": (_or_none(_batch_limit), "an integer >= 0 or a fraction in [0, 1]"),
    "limit_test_batches": (_or_none(_batch_limit), "an integer >= 0 or a fraction in [0, 1]"),
    "limit_predict_batches": (_or_none(_batch_limit), "an integer >= 0 or a fraction in [0, 1]"),
    "overfit_batches": (_batch_limit, "an integer >= 0 or a fraction in [0, 1]"),
    "fast_dev_run": (lambda v: isinstance(v, bool) or (_is_int(v) and v >= 0),
                     "true, false or an integer >= 0"),
    "num_nodes": (_at_least(1), "an integer >= 1"),
    "devices": (_devices, "auto, -1 (all), an integer >= 1, or a list of device indices"),
    "reload_dataloaders_every_n_epochs": (_at_least(0), "an integer >= 0"),
}
#: Run options outside the Trainer: seeds go to numpy, which takes [0, 2**32 - 1].
RUN_NUMBERS: dict[str, tuple[Callable[[object], bool], str]] = {
    "seed_everything": (lambda v: isinstance(v, bool) or v is None or
                        (_is_int(v) and 0 <= v < 2**32), "true, false or an integer in [0, 2**32 - 1]"),
    "checkpoint_every_n_steps": (_at_least(1), "an integer >= 1"),
}


def check_run_numbers(config: Mapping[str, Any], argv: Sequence[str] = ()) -> None:
    """Refuse a Trainer or run number out of its range in one line that names the key (and the
    config file it came from), before any model loads.

    ``config`` is one subcommand's config (``cli.config["fit"]``): a jsonargparse ``Namespace``
    or a mapping with a ``trainer`` section.
    """
    checks = [(f"trainer.{name}", config.get("trainer") or {}, name, rule)
              for name, rule in TRAINER_NUMBERS.items()]
    checks += [(name, config, name, rule) for name, rule in RUN_NUMBERS.items()]
    for key, section, name, (allowed, what) in checks:
        if name not in section:
            continue
        value = section.get(name)
        if not allowed(value):
            raise AutotrainError(f"{key}={value!r}{_where(key, argv)} is out of range: "
                                 f"use {what}")
