"""``aitrain llm``: the core and training flags, the guide's defaults, booleans, the data layout,
and one-line errors for unknown flags, bad values and unsupported features."""

import csv

import pytest
from llm_cli_helpers import base_argv, init

from autotrain_pl.cli import run_cli
from autotrain_pl.errors import AutotrainError
from autotrain_pl.llm import translate


def test_the_sft_guides_defaults(llm_config, tmp_path):
    config = llm_config()
    model, data, trainer = init(config), init(config, "data"), config["trainer"]
    # SFT guide, "Parameters": trainer sft, epochs 3, batch size 8, lr 5e-5, warmup 0.1,
    # gradient accumulation 4, scheduler linear, weight decay 0.0, max grad norm 1.0,
    # max seq length 2048, gradient checkpointing on (--disable-gradient-checkpointing false)
    assert config["model"]["class_path"] == "autotrain_pl.objectives.SFTModule"
    assert trainer["max_epochs"] == 3
    assert data["batch_size"] == 8
    assert model["learning_rate"] == 5e-5
    assert model["warmup_ratio"] == 0.1
    assert trainer["accumulate_grad_batches"] == 4
    assert model["lr_scheduler"] == "linear"
    assert model["weight_decay"] == 0.0
    assert trainer["gradient_clip_val"] == 1.0
    assert data["max_length"] == 2048
    assert model["gradient_checkpointing"] is True
    assert model["optimizer"] == "adamw"  # adamw_torch
    assert config["seed_everything"] == 42 and data["seed"] == 42  # LLMTrainingParams seed
    assert model["export_mode"] == "full" and "lora" not in model
    assert trainer["default_root_dir"] == str(tmp_path / "run")
    assert model["model_name_or_path"] == "gpt2"


def test_core_training_flags(llm_config):
    config = llm_config("--epochs", "1", "--batch-size", "2", "--lr", "1e-4", "--warmup-ratio",
                        "0.05", "--gradient-accumulation", "8", "--max-seq-length", "512",
                        "--mixed-precision", "bf16", "--seed", "7", "--scheduler", "cosine",
                        "--weight-decay", "0.01", "--max-grad-norm", "0.5", "--max-steps", "10",
                        "--disable-gradient-checkpointing", "--optimizer", "sgd")
    model, data, trainer = init(config), init(config, "data"), config["trainer"]
    assert (trainer["max_epochs"], data["batch_size"], model["learning_rate"]) == (1, 2, 1e-4)
    assert (model["warmup_ratio"], trainer["accumulate_grad_batches"]) == (0.05, 8)
    assert (data["max_length"], trainer["precision"], config["seed_everything"]) == \
        (512, "bf16-mixed", 7)
    assert (model["lr_scheduler"], model["weight_decay"], trainer["gradient_clip_val"]) == \
        ("cosine", 0.01, 0.5)
    assert trainer["max_steps"] == 10
    assert model["gradient_checkpointing"] is False
    assert model["optimizer"] == "torch.optim.SGD"


@pytest.mark.parametrize("flags, precision", [(["--mixed-precision", "fp16"], "16-mixed"),
                                              (["--mixed-precision", "none"], "32-true")])
def test_mixed_precision(llm_config, flags, precision):
    assert llm_config(*flags)["trainer"]["precision"] == precision


def test_peft_and_its_guide_defaults(llm_config):
    model = init(llm_config("--peft"))
    # SFT guide: lora r 16, alpha 32, dropout 0.05, target all-linear; merged by default
    assert model["lora"] == {"r": 16, "alpha": 32, "dropout": 0.05,
                             "target_modules": "all-linear"}
    assert model["export_mode"] == "merged"
    model = init(llm_config("--peft", "--lora-r", "64", "--lora-alpha", "128", "--lora-dropout",
                            "0.1", "--target-modules", "q_proj,v_proj,k_proj,o_proj",
                            "--quantization", "int4", "--no-merge-adapter"))
    assert model["lora"] == {"r": 64, "alpha": 128, "dropout": 0.1,
                             "target_modules": ["q_proj", "v_proj", "k_proj", "o_proj"]}
    assert model["quantization"] == {"bits": 4}
    assert model["export_mode"] == "adapter"
    assert init(llm_config("--peft", "--quantization", "int8"))["quantization"] == {"bits": 8}


@pytest.mark.parametrize("spelling", [["--peft"], ["--peft", "true"], ["--peft=yes"],
                                      ["--peft", "1"]])
def test_booleans_set_on(llm_config, spelling):
    assert "lora" in init(llm_config(*spelling))


@pytest.mark.parametrize("spelling", [["--no-peft"], ["--peft", "false"], ["--peft=0"]])
def test_booleans_set_off(llm_config, spelling):
    assert "lora" not in init(llm_config(*spelling))


def test_a_lora_flag_without_peft_says_so(llm_config):
    with pytest.raises(AutotrainError, match=r"--lora-r applies with --peft"):
        llm_config("--lora-r", "8")


def test_flash_attention_and_attention_implementation(llm_config):
    assert init(llm_config("--use-flash-attention-2"))["attn_implementation"] == \
        "flash_attention_2"
    assert init(llm_config("--attn-implementation", "sdpa"))["attn_implementation"] == "sdpa"
    with pytest.raises(AutotrainError, match="--attn-implementation and --use-flash"):
        llm_config("--attn-implementation", "sdpa", "--use-flash-attention-2")


def test_train_split_folder_layout(tmp_path, llm_config):
    folder = tmp_path / "csv_data"
    folder.mkdir()
    for name in ("train", "validation"):
        with (folder / f"{name}.csv").open("w", newline="") as handle:
            csv.writer(handle).writerows([["text"], ["Question: a? Answer: b."]])
    data = init(llm_config("--text-column", "text", data=folder), "data")
    assert data["data_path"] == str(folder)
    assert data["valid_split"] == "validation" and "split" not in data
    data = init(llm_config("--valid-split", "valid", data=folder), "data")
    assert data["valid_split"] == "validation"  # valid.* files are datasets' "validation"
    with pytest.raises(AutotrainError, match="--train-split dev: .* no dev files"):
        llm_config("--train-split", "dev", data=folder)


def test_a_single_file_and_its_splits(tmp_path, llm_config, data_dir):
    file = data_dir / "train.jsonl"
    data = init(llm_config(data=file), "data")
    assert data["data_path"] == str(file) and "valid_split" not in data
    with pytest.raises(AutotrainError, match="--valid-split picks a split .* is one file"):
        llm_config("--valid-split", "validation", data=file)


def test_a_missing_data_folder_is_named(llm_config, tmp_path):
    with pytest.raises(AutotrainError, match="--data-path .*/nowhere does not exist"):
        llm_config(data=tmp_path / "nowhere")


def test_columns_become_the_column_mapping(llm_config):
    assert init(llm_config("--text-column", "content"), "data")["column_mapping"] == \
        {"content": "text"}
    assert "column_mapping" not in init(llm_config("--text-column", "messages"), "data")
    assert init(llm_config("--prompt-text-column", "question", "--text-column", "answer"),
                "data")["column_mapping"] == {"question": "prompt", "answer": "completion"}


def test_two_flags_for_one_key_must_agree(llm_config):
    with pytest.raises(AutotrainError, match="--max-seq-length and --block-size both set "
                                             "data.init_args.max_length"):
        llm_config("--block-size", "512", "--max-seq-length", "1024")
    assert init(llm_config("--block-size", "512"), "data")["max_length"] == 512
    assert init(llm_config("--block-size", "-1"), "data")["max_length"] == 2048
    with pytest.raises(AutotrainError, match="--gradient-accumulation-steps 4 and "
                                             "--gradient-accumulation 2 set the same thing"):
        llm_config("--gradient-accumulation", "2", "--gradient-accumulation-steps", "4")


def test_logging_and_checkpoint_flags(llm_config):
    config = llm_config("--log", "tensorboard", "--logging-steps", "5", "--save-strategy",
                        "steps", "--save-steps", "50", "--load-state-from", "x/last.ckpt")
    assert config["trainer"]["logger"]["class_path"].endswith("TensorBoardLogger")
    assert config["trainer"]["log_every_n_steps"] == 5
    assert config["checkpoint_every_n_steps"] == 50
    assert config["ckpt_path"] == "x/last.ckpt"
    assert llm_config("--save-strategy", "no")["trainer"]["enable_checkpointing"] is False
    config = llm_config("--eval-strategy", "steps", "--eval-steps", "25")
    assert config["trainer"]["val_check_interval"] == 25
    assert config["trainer"]["check_val_every_n_epoch"] is None
    assert llm_config("--eval-strategy", "no")["trainer"]["limit_val_batches"] == 0


def test_unknown_flag_suggests_the_nearest(llm_config):
    with pytest.raises(AutotrainError, match=r"unknown flag --epoch; did you mean --epochs\?"):
        llm_config("--epoch", "3")
    with pytest.raises(AutotrainError, match=r"unknown flag --lora-rank; did you mean --lora-r"):
        llm_config("--lora-rank", "8")


@pytest.mark.parametrize("flags, message", [
    (["--lr", "abc"], "--lr abc: not a number"),
    (["--epochs", "2.5"], "--epochs 2.5: not a whole number"),
    (["--trainer", "kto"], "--trainer kto: use one of sft, default, distillation, dpo, orpo"),
    (["--peft", "maybe"], "--peft maybe: not a boolean"),
    (["--lr"], "--lr needs a value"),
    (["--scheduler", "polynomial"], "--scheduler polynomial: not supported"),
    (["--use-sweep", "--sweep-params", "{bad"], "--sweep-params: not valid JSON"),
    (["--lr", "1e-4", "--lr", "2e-4"], "--lr is given twice"),
    (["stray"], "unexpected argument 'stray'"),
])
def test_bad_values_name_the_flag(llm_config, flags, message):
    with pytest.raises(AutotrainError, match=message.replace("?", r"\?")):
        llm_config(*flags)


@pytest.mark.parametrize("flags, message", [
    (["--unsloth"], "--unsloth: not supported: Unsloth"),
    (["--push-to-hub"], "--push-to-hub: not supported: nothing uploads"),
    (["--token", "hf_x"], "--token hf_x: not supported: no tokens on the command line"),
    (["--add-eos-token", "false"], "--add-eos-token: not supported"),
    (["--padding", "left"], "--padding left: not supported"),
    (["--save-total-limit", "3"], "--save-total-limit 3: not supported"),
    (["--sample-every-n-steps", "10"], "--sample-every-n-steps 10: not supported"),
    (["--auto-find-batch-size"], "--auto-find-batch-size: not supported"),
    (["--max-prompt-length", "128"], "--max-prompt-length 128: not supported"),
    (["--distributed-backend", "deepspeed"], "--distributed-backend deepspeed: not supported"),
    (["--conversation-extension", "3"], "--conversation-extension 3: not supported"),
])
def test_unsupported_features_are_refused_not_ignored(llm_config, flags, message):
    with pytest.raises(AutotrainError, match=message):
        llm_config(*flags)


def test_values_that_describe_what_we_do_are_accepted(llm_config):
    llm_config("--train", "--unsloth", "false", "--add-eos-token", "--padding", "right",
               "--save-total-limit", "1", "--no-wandb-visualizer", "--auto-convert-dataset",
               "--use-sharegpt-mapping", "--apply-chat-template", "--manual-checkpoint-control")


def test_required_flags(data_dir, tmp_path):
    with pytest.raises(AutotrainError, match="--project-name is required"):
        translate(["--model", "gpt2", "--data-path", str(data_dir)])
    with pytest.raises(AutotrainError, match="--model is required"):
        translate(["--data-path", str(data_dir), "--project-name", str(tmp_path)])
    with pytest.raises(AutotrainError, match="--data-path is required"):
        translate(["--model", "gpt2", "--project-name", str(tmp_path)])


def test_the_cli_prints_one_line_and_exits_2(capsys):
    assert run_cli(["llm", "--model", "gpt2", "--lrr", "1e-4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["aitrain: error: unknown flag --lrr; did you mean --lr?"]


def test_help_lists_the_flags_by_group(capsys):
    assert run_cli(["llm", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Distillation:" in out and "--distill-temperature FLOAT (default 3.0)" in out
    assert run_cli(["llm", "--preview-trainer", "dpo", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--dpo-beta" in out and "--rl-gamma" not in out


def test_print_config_writes_yaml_and_runs_nothing(capsys, data_dir, tmp_path):
    import yaml

    argv = base_argv(data_dir, tmp_path)
    assert run_cli(["llm", *argv, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == translate(argv).config
    assert not (tmp_path / "run").exists()
