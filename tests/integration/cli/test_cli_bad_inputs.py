"""Every bad input a new user hits in the first hour: exit code 2, no traceback, at most two lines
on stderr, naming the key, file or flag, and a fix the command accepts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[3]
SFT = str(ROOT / "configs" / "sft.yaml")


def yaml_with(tmp_path: Path, name: str, edit) -> str:
    config = yaml.safe_load(Path(SFT).read_text())
    edit(config)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


def rename(section: str, old: str, new: str):
    def edit(config):
        args = config[section]["init_args"] if section != "trainer" else config["trainer"]
        args[new] = args.pop(old)
    return edit


def set_value(section: str, key: str, value):
    def edit(config):
        config[section]["init_args"][key] = value
    return edit


def used_run_dir(tmp_path: Path) -> list[str]:
    (tmp_path / "run" / "export").mkdir(parents=True)
    (tmp_path / "run" / "export" / "config.json").write_text("{}")
    return ["fit", "--config", SFT, "--trainer.default_root_dir", str(tmp_path / "run")]


def empty_file(tmp_path: Path, name: str = "empty.jsonl") -> str:
    path = tmp_path / name
    path.write_text("")
    return str(path)


def unknown_columns(tmp_path: Path) -> str:
    path = tmp_path / "wrong.csv"
    path.write_text("question_text,answer_text\nWhat is 1 + 1?,2\n")
    return str(path)


TINY = ["--model.init_args.model_name_or_path", "builtin:tiny"]
CASES = {
    "cli key typo": (lambda t: ["fit", "--config", SFT, "--model.init_args.learning_rte", "1e-3"],
                     ["model.init_args.learning_rte", "did you mean learning_rate"]),
    "yaml key typo": (lambda t: ["fit", "--config", yaml_with(
        t, "typo.yaml", rename("model", "learning_rate", "learing_rate"))],
        ["learing_rate", "typo.yaml", "did you mean learning_rate"]),
    "yaml data key typo": (lambda t: ["fit", "--config", yaml_with(
        t, "data.yaml", rename("data", "batch_size", "batch_sze"))],
        ["data.init_args.batch_sze", "data.yaml", "did you mean batch_size"]),
    "yaml trainer key typo": (lambda t: ["fit", "--config", yaml_with(
        t, "trainer.yaml", rename("trainer", "max_steps", "max_stepz"))],
        ["trainer.max_stepz", "trainer.yaml", "did you mean max_steps"]),
    "bad value": (lambda t: ["fit", "--config", yaml_with(
        t, "fast.yaml", set_value("model", "learning_rate", "fast"))],
        ["learning_rate=fast", "fast.yaml", "float"]),
    "trainer flag typo": (lambda t: ["fit", "--config", SFT, "--trainer.max_stepz", "3"],
                          ["--trainer.max_stepz", "did you mean max_steps"]),
    "model reference as class": (lambda t: ["fit", "--config", SFT, "--model", "builtin:tiny"],
                                 ["--model.init_args.model_name_or_path builtin:tiny"]),
    "nothing to resume": (lambda t: ["fit", "--config", SFT, "--trainer.default_root_dir",
                                     str(t / "fresh"), "--ckpt_path", "last"],
                          ["--ckpt_path last", "last.ckpt", "--ckpt_path auto"]),
    "run directory in use": (used_run_dir, ["already holds a run", "--overwrite"]),
    "overwrite outside fit": (lambda t: ["validate", "--config", SFT, "--overwrite", "true"],
                              ["--overwrite applies to aitrain fit"]),
    "empty data file (fit)": (lambda t: ["fit", "--config", SFT, *TINY, "--data.init_args.data_path",
                                         empty_file(t), "--trainer.default_root_dir", str(t / "r")],
                              ["empty.jsonl", "no rows"]),
    "empty data file (eval)": (lambda t: ["eval", "--model", "builtin:tiny", "--dataset",
                                          empty_file(t)], ["empty.jsonl", "no rows"]),
    "columns of no row format (eval)": (lambda t: ["eval", "--model", "builtin:tiny", "--dataset",
                                                   unknown_columns(t)],
                                        ["wrong.csv", "--column_mapping", "--row_format"]),
    "unknown metric (eval)": (lambda t: ["eval", "--model", "builtin:tiny", "--dataset",
                                         "synthetic:arithmetic?n=4", "--metrics", "blue"],
                              ["metric 'blue' is not known", "bleu"]),
    "max_length below every reply": (lambda t: ["fit", "--config", SFT, *TINY,
                                                "--data.init_args.max_length", "4",
                                                "--trainer.default_root_dir", str(t / "r")],
                                     ["data.init_args.max_length (now 4)"]),
    "bertscore model offline (eval)": (lambda t: ["eval", "--model", "builtin:tiny", "--dataset",
                                                  "synthetic:arithmetic?n=4", "--metrics",
                                                  "bertscore"], ["bertscore", "--metric_kwargs"]),
}


# One process runs every case, with fd 2 pointed at a fresh file per case, so each case's stderr
# is exactly what ``aitrain`` prints, without paying a process start per case.
DRIVER = """
import json, os, sys
from autotrain_pl.cli import run_cli

cases, folder = json.loads(sys.argv[1]), sys.argv[2]
sys.argv = sys.argv[:1]  # as ``aitrain`` itself: the arguments go to run_cli
results = {}
for case, argv in cases.items():
    path = folder + "/" + str(len(results)) + ".err"
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "w") as err:
        os.dup2(err.fileno(), 2)
        try:
            code = run_cli(argv)
        except SystemExit as done:
            code = done.code
        sys.stderr.flush()
        os.dup2(saved, 2)
    results[case] = {"code": code, "stderr": open(path).read()}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("bad_inputs")
    cases = {}
    for case, (argv, _) in CASES.items():
        folder = root / case.replace(" ", "_")
        folder.mkdir()
        cases[case] = argv(folder)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(cases), str(root)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return {case: {**results[case], "folder": root / case.replace(" ", "_")} for case in CASES}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_short_error(case, outcomes):
    outcome = outcomes[case]
    lines = [line for line in outcome["stderr"].splitlines() if line.strip()]
    assert outcome["code"] == 2, outcome["stderr"][-2000:]
    assert "Traceback" not in outcome["stderr"]
    assert len(lines) <= 2, outcome["stderr"]
    assert lines[-1].startswith("aitrain: error: ")
    for part in CASES[case][1]:
        assert part in lines[-1], (part, lines[-1])
    assert not list(outcome["folder"].glob("**/logs/version_*"))
