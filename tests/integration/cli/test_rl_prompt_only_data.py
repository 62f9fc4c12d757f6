"""RL data holds prompts and references, no replies: ``aitrain fit`` must not check it as SFT
rows (which need an assistant message) before the objective reads it."""

from autotrain_pl.cli import run_cli


def test_grpo_fits_prompt_only_rows_from_the_cli(tmp_path):
    code = run_cli([
        "fit", "--model.class_path", "autotrain_pl.objectives.GRPOModule",
        "--model.init_args.model_name_or_path", "builtin:tiny",
        "--model.init_args.num_generations", "2",
        "--data.class_path", "autotrain_pl.data.ChatDataModule",
        "--data.init_args.data_path", "synthetic:rl_prompts?n=8", "--data.init_args.batch_size", "2",
        "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0",
        "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "export" / "autotrain.json").is_file()


def test_a_bad_rl_prompt_row_fails_before_the_model_loads(tmp_path, capsys, monkeypatch):
    from transformers import PreTrainedModel

    def no_model(*args, **kwargs):
        raise AssertionError("the model loaded before the data was checked")

    monkeypatch.setattr(PreTrainedModel, "from_pretrained", no_model)
    data = tmp_path / "prompts.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "2 + 2?"}]}\n'
                    '{"messages": [{"role": "bot", "content": "3 + 3?"}]}\n')
    code = run_cli([
        "fit", "--model.class_path", "autotrain_pl.objectives.GRPOModule",
        "--data.class_path", "autotrain_pl.data.ChatDataModule",
        "--data.init_args.data_path", str(data), "--trainer.default_root_dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and f"{data} line 2" in err[-1] and "'bot'" in err[-1]
