"""The README's "Coming from aitraining" tables cannot rot: every flag row is checked against
``aitrain llm`` (a row that says same name or ours is accepted; one that says not supported is
refused) and the flag table lists exactly the flags ``aitrain llm`` knows; every
``autotrain_pl...`` name of the Python table imports."""

import importlib
import re
from pathlib import Path

import pytest
from llm_cli_helpers import base_argv

from autotrain_pl.errors import AutotrainError
from autotrain_pl.llm import translate
from autotrain_pl.llm.flags import BY_NAME, FLAGS
from autotrain_pl.llm.helptext import table_cell

README = Path(__file__).parents[3] / "README.md"
SECTION = "## Coming from aitraining"
STATUSES = ("same name", "ours", "not supported")


def section() -> str:
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    body = text.split(SECTION, 1)[1]
    return body.split("\n## ", 1)[0]


def flag_rows() -> dict[str, str]:
    """Flag name -> the status word(s) its row starts with."""
    rows = {}
    for line in section().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `--") or len(cells) != 3:
            continue
        status = next((s for s in STATUSES if cells[2].startswith(s + ":")), None)
        assert status, f"README row {line!r} says neither same name, ours nor not supported"
        for name in re.findall(r"`--([a-z0-9-]+)`", cells[0]):
            rows[name] = status
    return rows


def python_rows() -> list[tuple[str, str]]:
    rows = []
    for line in section().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and not line.startswith("| `--") and len(cells) == 2:
            rows.append((cells[0], cells[1]))
    return rows


def test_the_table_lists_every_flag_once():
    rows = flag_rows()
    names = {name for flag in FLAGS for name in (flag.name, *flag.aliases)}
    assert set(rows) == names


def test_each_row_says_what_the_flag_table_says():
    rows = flag_rows()
    for flag in FLAGS:
        assert table_cell(flag).startswith(rows[flag.name] + ":"), flag.name


#: What a flag needs around it to apply (its trainer, its switch, a partner flag).
CONTEXT = {
    "save-steps": ["--save-strategy", "steps"], "eval-steps": ["--use-enhanced-eval"],
    "eval-strategy": ["--eval-steps", "10"],
    "optimizer-step-frequency": ["--use-forward-backward"],
    "rl-multi-objective": ["--rl-reward-weights", '{"correctness": 1.0}'],
    "preview-trainer": ["--help"], "help-trainer": ["--help"],
}
SWITCH_CONTEXT = {
    "use-distillation": ["--use-distillation", "--teacher-model", "builtin:mini"],
    "use-sweep": ["--use-sweep", "--sweep-params", '{"lr": [1e-5, 1e-4]}'],
    "use-enhanced-eval": ["--use-enhanced-eval"], "peft": ["--peft"],
}


def argv_for(flag, value, data_dir, tmp_path) -> list[str]:
    """A command line where ``flag`` applies, with ``--flag value``."""
    shown = [f"--{flag.name}"] if value is True else \
        [f"--no-{flag.name}"] if value is False else [f"--{flag.name}", _text(value)]
    if flag.group == "Inference":
        return ["--inference-mode", "--model", "m", "--inference-prompts", "Hi",
                *([] if flag.name in ("inference-mode", "inference-prompts") else shown)]
    argv = [a for a in base_argv(data_dir, tmp_path)]
    if flag.name in ("model", "data-path", "project-name"):
        index = argv.index(f"--{flag.name}")
        argv[index + 1] = _text(value) if flag.name != "data-path" else str(data_dir)
        return argv
    if flag.trainers:
        trainer = next(t for t in ("sft", "dpo", "ppo") if t in flag.trainers)
        argv += ["--trainer", trainer] if flag.name != "trainer" else []
        if trainer == "ppo" and not flag.name.startswith("rl-reward"):
            argv += ["--rl-reward-fn", "correctness"]
    if flag.needs:
        context = SWITCH_CONTEXT[flag.needs]
        if f"--{flag.name}" in context:  # the switch's own partner (--teacher-model)
            index = context.index(f"--{flag.name}")
            context = context[:index] + context[index + 2:]
        argv += context
    if flag.name in SWITCH_CONTEXT:
        return argv + SWITCH_CONTEXT[flag.name]
    return argv + CONTEXT.get(flag.name, []) + shown


def _text(value) -> str:
    import json

    return json.dumps(value) if isinstance(value, dict | list) else str(value)


@pytest.mark.parametrize("name", sorted(f.name for f in FLAGS))
def test_each_row_holds_for_aitrain_llm(name, data_dir, tmp_path):
    flag, status = BY_NAME[name], flag_rows()[name]
    if status == "not supported":
        value = True if flag.kind == "bool" else flag.example
        with pytest.raises(AutotrainError, match="not supported"):
            translate(argv_for(flag, value, data_dir, tmp_path))
    else:
        translate(argv_for(flag, flag.example, data_dir, tmp_path))


def _resolve(path: str):
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(path)


def test_the_python_names_table_names_what_exists():
    rows = python_rows()
    assert len(rows) > 30
    for guide, here in rows:
        status = next((s for s in STATUSES if here.startswith(s + ":")), None)
        assert status, f"README row for {guide} says neither same name, ours nor not supported"
        for path in re.findall(r"`(autotrain_pl(?:\.\w+)+)", here):
            assert _resolve(path) is not None, path
