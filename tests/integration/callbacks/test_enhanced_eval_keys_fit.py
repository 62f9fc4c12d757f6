"""Every ``eval_*`` key of ``use_enhanced_eval`` in one short ``aitrain fit`` from YAML: text
metrics on the validation rows, a held-out file of its own, saved predictions and ARC-Challenge
from local data; each logged value is checked against the evaluator on the exported model."""

import json
from pathlib import Path

import pytest
import yaml

from autotrain_pl.callbacks.metrics_logger import read_metrics
from autotrain_pl.cli import run_cli
from autotrain_pl.data import arithmetic_splits, write_jsonl
from autotrain_pl.evaluation import Evaluator
from autotrain_pl.evaluation.metrics import get_metric

DATA = "synthetic:arithmetic?n=64&n_valid=6&seed=0"
ARC = str(Path(__file__).parents[2] / "fixtures" / "benchmarks" / "ai2_arc")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    import torch

    root = tmp_path_factory.mktemp("enhanced")
    held_out = write_jsonl(arithmetic_splits(4, 4, seed=7, digits=1)[1], root / "held_out.jsonl")
    config = {
        "seed_everything": 0,
        "model": {"class_path": "autotrain_pl.objectives.SFTModule", "init_args": {
            "model_name_or_path": "builtin:tiny", "use_enhanced_eval": True,
            "eval_metrics": "perplexity,bleu,rouge", "eval_steps": 1, "eval_batch_size": 6,
            "eval_dataset_path": str(held_out), "eval_save_predictions": True,
            "eval_benchmark": "arc", "eval_benchmark_data": ARC,
            "eval_benchmark_num_fewshot": 1}},
        "data": {"class_path": "autotrain_pl.data.ChatDataModule", "init_args": {
            "data_path": DATA, "valid_path": DATA + "&split=valid", "chat_format": "chatml",
            "batch_size": 4, "max_length": 24}},
        "trainer": {"max_steps": 2, "default_root_dir": str(root / "run"),
                    "enable_progress_bar": False, "enable_model_summary": False,
                    "num_sanity_val_steps": 0, "val_check_interval": 2},
    }
    path = root / "enhanced.yaml"
    path.write_text(yaml.safe_dump(config))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 1M-parameter model runs faster on one thread
    try:
        assert run_cli(["fit", "--config", str(path)]) == 0
    finally:
        torch.set_num_threads(threads)
    run_dir = root / "run"
    rows = read_metrics(run_dir / "metrics.jsonl")
    last = {key: value for row in rows if row["global_step"] == 2 for key, value in row.items()}
    return {"dir": run_dir, "rows": rows, "last": last, "held_out": str(held_out)}


def _steps(rows, key):
    return [r["global_step"] for r in rows if r.get(key) is not None]


def test_each_key_logs_at_every_evaluation(run):
    rows = run["rows"]
    for key in ("val/bleu", "val/rouge1", "val/rouge2", "val/rougeL", "eval/perplexity",
                "eval/bleu", "eval/rougeL", "eval/arc_challenge_acc",
                "eval/arc_challenge_acc_norm"):
        assert _steps(rows, key) == [1, 2], key
    assert "val/perplexity" not in run["last"]  # on the validation rows it is val/ppl
    assert (run["dir"] / "plots" / "eval_arc_challenge_acc.png").exists()


def test_predictions_are_saved_per_evaluation_and_rouge_matches_them(run):
    predictions = run["dir"] / "predictions"
    assert sorted(p.name for p in predictions.iterdir()) == [
        "eval_step_1.jsonl", "eval_step_2.jsonl", "step_1.jsonl", "step_2.jsonl"]
    for step in (1, 2):
        records = [json.loads(line) for line in
                   (predictions / f"step_{step}.jsonl").read_text().splitlines()]
        assert len(records) == 6 and {r["step"] for r in records} == {step}
        assert set(records[0]) == {"prompt", "reference", "prediction", "step"}
        held = (predictions / f"eval_step_{step}.jsonl").read_text().splitlines()
        assert len(held) == 4
    preds, refs = [r["prediction"] for r in records], [r["reference"] for r in records]
    for key in ("rouge1", "rouge2", "rougeL"):  # `rouge` = the three existing ROUGE metrics
        metric = get_metric(key)
        metric.update(preds, refs)
        assert run["last"][f"val/{key}"] == pytest.approx(metric.compute()[key], abs=1e-6)


def test_held_out_metrics_come_from_that_file(run):
    result = Evaluator(str(run["dir"] / "export"), data_path=run["held_out"],
                       metrics=["perplexity"], max_length=24).run()
    assert run["last"]["eval/perplexity"] == pytest.approx(result.metrics["perplexity"], rel=1e-5)
    assert run["last"]["eval/perplexity"] != pytest.approx(run["last"]["val/ppl"], rel=1e-3)


def test_benchmark_accuracy_equals_the_evaluator_on_the_export(run):
    result = Evaluator(str(run["dir"] / "export"), benchmark="arc_challenge", data_path=ARC,
                       num_fewshot=1).run()
    assert run["last"]["eval/arc_challenge_acc"] == pytest.approx(result.metrics["acc"])
    assert run["last"]["eval/arc_challenge_acc_norm"] == pytest.approx(result.metrics["acc_norm"])
