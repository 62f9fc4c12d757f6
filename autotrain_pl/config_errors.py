"""jsonargparse's config errors, as one line that names the key and the file and suggests a fix.

A mistyped key (``--model.init_args.learning_rte``, or ``learing_rate:`` in a YAML) makes
jsonargparse print the whole usage block and a nested "Does not validate against any of the Union
subtypes" report. ``one_line(message, argv)`` turns its message into what a user can act on::

    model.init_args.learing_rate (in configs/sft.yaml) is not an option of SFTModule; did you mean
    learning_rate?
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Sequence

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
