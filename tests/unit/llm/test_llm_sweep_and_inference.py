"""``aitrain llm --use-sweep`` as our sweep settings over the translated config, and
``--inference-mode`` as ``aitrain generate`` arguments."""

import pytest
import yaml
from llm_cli_helpers import base_argv

from autotrain_pl.cli import run_cli
from autotrain_pl.errors import AutotrainError
from autotrain_pl.llm import translate

GUIDE_PARAMS = '{"lr": [1e-5, 1e-3, "log_uniform"], "batch_size": [4, 8, 16]}'


@pytest.fixture
def sweep(data_dir, tmp_path):
    def make(*flags: str):
        return translate(base_argv(data_dir, tmp_path) + ["--use-sweep", *flags])

    return make


def test_the_guides_sweep_defaults(sweep, tmp_path):
    run = sweep("--sweep-params", GUIDE_PARAMS)
    settings = run.sweep
    assert run.mode == "sweep"
    # Integration guide: backend optuna (TPE), 10 trials, metric eval_loss (our val/loss),
    # direction minimize
    assert settings["sampler"] == "tpe"
    assert settings["n_trials"] == 10
    assert settings["metric"] == "val/loss"
    assert settings["direction"] == "minimize"
    assert settings["search_space"] == {
        "model.init_args.learning_rate": [1e-5, 1e-3, "log_uniform"],
        "data.init_args.batch_size": [4, 8, 16]}
    assert settings["sweep_dir"] == str(tmp_path / "run")
    assert settings["base_config"] == run.config


def test_the_guides_sweep_example(sweep):
    settings = sweep("--sweep-backend", "random", "--sweep-n-trials", "20", "--sweep-metric",
                     "eval_loss", "--sweep-direction", "maximize", "--peft", "--sweep-params",
                     '{"lr": {"low": 1e-5, "high": 1e-3, "type": "float"}, "lora_r": [8, 16], '
                     '"warmup_ratio": [0.0, 0.1], "model.init_args.weight_decay": [0.0, 0.1]}'
                     ).sweep
    assert (settings["sampler"], settings["n_trials"], settings["direction"]) == \
        ("random", 20, "maximize")
    assert list(settings["search_space"]) == [
        "model.init_args.learning_rate", "model.init_args.lora.r",
        "model.init_args.warmup_ratio", "model.init_args.weight_decay"]


@pytest.mark.parametrize("params, message", [
    ('{"lora_r": [8, 16]}', "cannot sweep --lora-r: it sets no key in this run \\(it needs "
                            "--peft\\)"),
    ('{"lrate": [1e-5, 1e-4]}', "not a flag of aitrain llm; did you mean lr"),
    ('{"optimizer": ["adamw_torch", "sgd"]}', "--optimizer's values are translated"),
    ('[1, 2]', "give a JSON object of parameter to range"),
])
def test_sweep_param_errors(sweep, params, message):
    with pytest.raises(AutotrainError, match=message):
        sweep("--sweep-params", params)


def test_a_sweep_needs_validation_data(tmp_path, data_dir):
    argv = base_argv(data_dir / "train.jsonl", tmp_path) + ["--use-sweep", "--sweep-params",
                                                           GUIDE_PARAMS]
    with pytest.raises(AutotrainError, match="--use-sweep scores each trial on validation data"):
        translate(argv)


def test_sweep_flags_need_use_sweep(data_dir, tmp_path):
    with pytest.raises(AutotrainError, match="--sweep-n-trials applies with --use-sweep"):
        translate(base_argv(data_dir, tmp_path) + ["--sweep-n-trials", "5"])


def test_sweep_print_config_is_an_aitrain_sweep_config(capsys, data_dir, tmp_path):
    from autotrain_pl.sweep.runner import SweepSettings

    argv = base_argv(data_dir, tmp_path) + ["--use-sweep", "--sweep-params", GUIDE_PARAMS]
    assert run_cli(["llm", *argv, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    settings = SweepSettings.from_mapping(printed)
    assert settings.n_trials == 10 and settings.base()["trainer"]["max_epochs"] == 3


# -- inference ------------------------------------------------------------------------------------
def test_the_guides_inference_example(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Hello\nWhat is 2 + 2?\n")
    run = translate(["--inference-mode", "--model", "my_finetuned_model", "--inference-prompts",
                     str(prompts), "--inference-output", "results.json",
                     "--inference-max-tokens", "100", "--inference-temperature", "0.7",
                     "--project-name", "inference_run"])
    assert run.mode == "inference"
    assert run.generate_argv == [
        "--model", "my_finetuned_model", "--max_new_tokens", "100", "--temperature", "0.7",
        "--top_p", "1.0", "--top_k", "50", "--seed", "42", "--output", "results.json",
        "--prompts_file", str(prompts)]


def test_inference_prompts_separated_by_commas():
    run = translate(["--inference-mode", "--model", "m", "--inference-prompts", "Hi, Bye",
                     "--chat-format", "chatml"])
    argv = run.generate_argv
    assert argv[argv.index("--chat_format") + 1] == "chatml"
    assert argv[-3:] == ["--", "Hi", "Bye"]
    assert argv[argv.index("--output") + 1] == "-"


def test_inference_mode_refuses_training_flags():
    with pytest.raises(AutotrainError, match="--lr applies to training, not --inference-mode"):
        translate(["--inference-mode", "--model", "m", "--inference-prompts", "a", "--lr", "1"])
    with pytest.raises(AutotrainError, match="--inference-prompts applies with "
                                             "--inference-mode"):
        translate(["--model", "m", "--inference-prompts", "a"])


def test_inference_print_config_prints_the_generate_command(capsys):
    assert run_cli(["llm", "--inference-mode", "--model", "m", "--inference-prompts", "Hi",
                    "--print-config"]) == 0
    assert capsys.readouterr().out.startswith("aitrain generate --model m --max_new_tokens 256")



def test_inference_results_land_in_the_project_folder():
    argv = translate(["--inference-mode", "--model", "m", "--inference-prompts", "Hi",
                      "--project-name", "inference_run"]).generate_argv
    assert argv[argv.index("--output") + 1] == "inference_run/inference_results.jsonl"
