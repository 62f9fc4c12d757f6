"""``aitrain llm ... --print-config > x.yaml; aitrain fit --config x.yaml`` is the same run as
``aitrain llm ...``: same resolved config, same trained weights."""

import io

import yaml
from llm_fit_helpers import SHORT, STUDENT
from safetensors.torch import load_file

from autotrain_pl.cli import run_cli


def test_print_config_then_fit_trains_the_same_weights(tmp_path, chat_data, capsys):
    argv = ["llm", "--model", STUDENT, "--data-path", str(chat_data), "--project-name",
            str(tmp_path / "llm"), "--peft", "--lora-r", "4", *SHORT]
    assert run_cli([*argv, "--print-config"]) == 0
    config_file = tmp_path / "x.yaml"
    config_file.write_text(capsys.readouterr().out, encoding="utf-8")
    assert not (tmp_path / "llm").exists()  # printing runs nothing

    assert run_cli(argv) == 0
    assert run_cli(["fit", "--config", str(config_file),
                    "--trainer.default_root_dir", str(tmp_path / "fit")]) == 0
    ours, theirs = (load_file(tmp_path / run / "export" / "model.safetensors")
                    for run in ("llm", "fit"))
    assert ours.keys() == theirs.keys()
    assert all(ours[name].equal(theirs[name]) for name in ours)
    written = yaml.safe_load((tmp_path / "llm" / "llm_config.yaml").read_text())
    assert written == yaml.safe_load(config_file.read_text())


def test_fit_reads_the_printed_config_from_stdin(tmp_path, chat_data, capsys, monkeypatch):
    argv = ["llm", "--model", STUDENT, "--data-path", str(chat_data), "--project-name",
            str(tmp_path / "run"), "--print-config"]
    assert run_cli(argv) == 0
    printed = capsys.readouterr().out
    config_file = tmp_path / "x.yaml"
    config_file.write_text(printed, encoding="utf-8")
    assert run_cli(["fit", "--config", str(config_file), "--print_config"]) == 0
    from_file = yaml.safe_load(capsys.readouterr().out)
    monkeypatch.setattr("sys.stdin", io.StringIO(printed))
    assert run_cli(["fit", "--config", "-", "--print_config"]) == 0
    from_stdin = yaml.safe_load(capsys.readouterr().out)
    for section in ("seed_everything", "model", "data"):
        assert from_stdin[section] == from_file[section]


def test_a_second_run_in_the_same_project_is_refused_before_its_config_is_replaced(
        tmp_path, chat_data, capsys):
    project = tmp_path / "run"
    argv = ["llm", "--model", STUDENT, "--data-path", str(chat_data), "--project-name",
            str(project), *SHORT[:2]]
    (project / "export").mkdir(parents=True)
    (project / "export" / "config.json").write_text("{}")
    (project / "llm_config.yaml").write_text("# the first run's\n")
    assert run_cli([*argv, "--lr", "1e-3"]) == 2
    assert "already holds a run (export); pass --overwrite" in capsys.readouterr().err
    assert (project / "llm_config.yaml").read_text() == "# the first run's\n"
