"""The README's "Use" commands, run in order after a (short) quickstart, work offline as written.

Each line of the first bash block under "## Use" runs through ``aitrain`` in a folder holding a
copy of ``configs/``, after the quickstart config trained a few steps. Training commands get a
few steps instead of hundreds; nothing else is changed. That the full-length commands give
sensible answers is measured in the README (quickstart and sft figures).
"""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
from pathlib import Path

from autotrain_pl.cli import run_cli

ROOT = Path(__file__).parents[3]
SHORT = ["--trainer.max_steps", "3", "--trainer.limit_val_batches", "1",
         "--trainer.enable_progress_bar", "false"]


def readme_use_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Use"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].strip() if not line.strip().startswith("#") else ""
        if line:
            words = shlex.split(line)
            assert words[0] == "aitrain", line
            commands.append(words[1:])
    return commands


def test_readme_use_commands_run_offline_after_the_quickstart(tmp_path, monkeypatch, capsys,
                                                               one_torch_thread):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    assert run_cli(["fit", "--config", "configs/quickstart.yaml", *SHORT]) == 0
    commands = readme_use_commands()
    assert [c[0] for c in commands] == ["generate", "chat", "eval", "fit", "generate", "fit",
                                        "fit"]
    for command in commands:
        capsys.readouterr()
        if command[0] == "chat":
            monkeypatch.setattr("sys.stdin", io.StringIO("What is 1 + 1?\n/exit\n"))
        extra = SHORT if command[0] == "fit" and "--print_config" not in command else []
        code = run_cli([*command, *extra])
        out = capsys.readouterr()
        assert code == 0, (command, out.err[-2000:])
        if command[0] == "generate":
            record = json.loads(out.out.strip().splitlines()[-1])
            assert record["completion"] is not None and record["stop_reason"]
    assert (tmp_path / "runs" / "sft" / "export" / "autotrain.json").exists()
