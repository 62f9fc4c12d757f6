"""The guide's ``aitraining llm`` examples run offline through ``aitrain llm`` (in-process, through
``run_cli``), with builtin models for gpt2/gpt2-medium and two short steps, and write
``<project-name>/export``."""

import json
from pathlib import Path

import yaml
from llm_fit_helpers import SHORT, STUDENT, TEACHER

from autotrain_pl.cli import run_cli


def llm(*argv: str) -> int:
    return run_cli(["llm", *map(str, argv)])


def fit_config(project: Path) -> dict:
    return yaml.safe_load((project / "llm_config.yaml").read_text())


def assert_exported(project: Path) -> None:
    assert (project / "export" / "config.json").is_file()
    assert (project / "export" / "autotrain.json").is_file()


def test_basic_sft_on_a_text_column(tmp_path, text_data):
    # SFT guide, CLI usage: --trainer sft --text-column text --epochs 3 --batch-size 8 --lr 5e-5
    project = tmp_path / "my-sft-model"
    assert llm("--model", STUDENT, "--trainer", "sft", "--data-path", text_data,
               "--text-column", "text", "--project-name", project, "--epochs", "3",
               "--batch-size", "8", "--lr", "5e-5", "--max-steps", "2") == 0
    assert_exported(project)
    config = fit_config(project)
    assert config["model"]["init_args"]["learning_rate"] == 5e-5
    assert config["data"]["init_args"]["batch_size"] == 8


def test_distillation_example(tmp_path, chat_data):
    # Integration guide, quick start: prompt distillation integrated in SFT, with PEFT
    project = tmp_path / "my-distilled-model"
    assert llm("--model", STUDENT, "--trainer", "sft", "--use-distillation", "--teacher-model",
               TEACHER, "--distill-temperature", "3.5", "--distill-alpha", "0.75",
               "--data-path", chat_data, "--project-name", project, "--epochs", "3", "--peft",
               *SHORT) == 0
    assert_exported(project)
    distillation = fit_config(project)["model"]["init_args"]["distillation"]
    assert distillation == {"temperature": 3.5, "alpha": 0.75, "distill_max_teacher_length": 512}


def test_distillation_prompt_templates(tmp_path, chat_data):
    # Integration guide, "CLI Parameters for Tinker Features": the teacher's prompt template
    project = tmp_path / "distilled_model"
    assert llm("--train", "--trainer", "sft", "--use-distillation", "--teacher-model", TEACHER,
               "--teacher-prompt-template", "Complex prompt: {input}",
               "--student-prompt-template", "{input}", "--distill-temperature", "3.0",
               "--distill-alpha", "0.7", "--model", STUDENT, "--data-path", chat_data,
               "--project-name", project, *SHORT) == 0
    assert_exported(project)


def test_enhanced_evaluation(tmp_path, chat_data):
    # Integration guide, quick start: --use-enhanced-eval --eval-metrics "perplexity,bleu,rouge"
    project = tmp_path / "my-model"
    assert llm("--model", STUDENT, "--data-path", chat_data, "--project-name", project,
               "--use-enhanced-eval", "--eval-metrics", "perplexity,bleu,rouge",
               "--eval-batch-size", "16", "--eval-save-predictions", *SHORT) == 0
    assert_exported(project)
    assert (project / "metrics.jsonl").is_file()
    assert any((project / "predictions").glob("*.jsonl"))


def test_message_rendering_chat_format(tmp_path, chat_data):
    # Integration guide, CLI parameters: --chat-format chatml (or zephyr, alpaca, ...)
    project = tmp_path / "chat_model"
    assert llm("--train", "--chat-format", "zephyr", "--model", STUDENT, "--data-path",
               chat_data, "--project-name", project, *SHORT) == 0
    assert_exported(project)
    assert json.loads((project / "export" / "autotrain.json").read_text())["renderer"] == \
        "zephyr"


def test_dpo(tmp_path, pair_data):
    # The guide's DPO flags: the chosen reply in --text-column, the rejected one by name
    project = tmp_path / "dpo_run"
    assert llm("--model", STUDENT, "--trainer", "dpo", "--data-path", pair_data,
               "--prompt-text-column", "prompt", "--text-column", "text",
               "--rejected-text-column", "rejected", "--dpo-beta", "0.1",
               "--project-name", project, *SHORT) == 0
    assert_exported(project)


def test_reward_model(tmp_path, pair_data):
    project = tmp_path / "reward_run"
    assert llm("--model", STUDENT, "--trainer", "reward", "--data-path", pair_data,
               "--text-column", "text", "--rejected-text-column", "rejected",
               "--project-name", project, *SHORT) == 0
    assert_exported(project)
    assert "ForSequenceClassification" in \
        json.loads((project / "export" / "config.json").read_text())["architectures"][0]


def test_ppo_with_a_reward_model(tmp_path, prompt_data, reward_model):
    # Integration guide, "PPO with TRL": --rl-env-type text_generation --rl-reward-model PATH
    project = tmp_path / "ppo_run"
    short = [a for a in SHORT if a not in ("--gradient-accumulation", "1")]
    assert llm("--train", "--trainer", "ppo", "--rl-gamma", "0.99", "--rl-kl-coef", "0.1",
               "--rl-clip-range", "0.2", "--rl-env-type", "text_generation",
               "--rl-reward-model", reward_model, "--model", STUDENT, "--data-path",
               prompt_data, "--project-name", project, "--rl-max-new-tokens", "4",
               "--rl-num-ppo-epochs", "1", *short) == 0
    assert_exported(project)
    init = fit_config(project)["model"]["init_args"]
    assert init["rl_env_type"] == "reward_model"
    assert init["rl_reward_model_path"] == str(reward_model)


def test_sweep_with_two_trials(tmp_path, chat_data):
    # Integration guide, "Hyperparameter Sweep", with 2 trials instead of 20
    project = tmp_path / "sweep_run"
    assert llm("--train", "--use-sweep", "--sweep-backend", "optuna", "--sweep-n-trials", "2",
               "--sweep-params", '{"lr": [1e-5, 1e-3, "log_uniform"], "batch_size": [4, 8]}',
               "--sweep-metric", "eval_loss", "--sweep-direction", "minimize",
               "--model", STUDENT, "--data-path", chat_data, "--project-name", project,
               "--max-steps", "2", "--gradient-accumulation", "1", "--max-seq-length",
               "64") == 0
    best = json.loads((project / "best.json").read_text())
    assert best["metric"] == "val/loss"
    assert set(best["params"]) == {"model.init_args.learning_rate", "data.init_args.batch_size"}
    assert_exported(project)


def test_forward_backward_with_a_custom_loss_by_import_path(tmp_path, chat_data):
    project = tmp_path / "fb_run"
    assert llm("--model", STUDENT, "--data-path", chat_data, "--project-name", project,
               "--use-forward-backward", "--forward-backward-loss-fn", "custom",
               "--forward-backward-custom-fn", "llm_test_losses:half_cross_entropy",
               "--gradient-accumulation-steps", "2", *SHORT[:4]) == 0
    assert_exported(project)
    config = fit_config(project)
    assert config["model"]["init_args"]["loss"] == "llm_test_losses.half_cross_entropy"
    [callback] = config["trainer"]["callbacks"]
    assert callback["init_args"]["optimizer_step_frequency"] == 2


def test_custom_loss_mix(tmp_path, chat_data):
    project = tmp_path / "loss_run"
    assert llm("--model", STUDENT, "--data-path", chat_data, "--project-name", project,
               "--custom-loss", "composite", "--custom-loss-weights",
               '{"ce": 1.0, "entropy": -0.01}', *SHORT) == 0
    assert_exported(project)


def test_inference_mode(tmp_path, capsys):
    # Integration guide, "Inference Mode (Using Completers)", on a builtin model
    output = tmp_path / "results.json"
    assert llm("--inference-mode", "--model", STUDENT, "--inference-prompts", "Hi,What is 2 + 2?",
               "--inference-output", output, "--inference-max-tokens", "4",
               "--inference-temperature", "0.7", "--project-name", tmp_path / "inference") == 0
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["prompt"] for r in records] == ["Hi", "What is 2 + 2?"]
    assert all(r["num_tokens"] <= 4 for r in records)
