"""End to end on the fixture files: log-likelihoods and metrics, recomputed by hand."""

import math

import numpy as np
import pytest
from benchmark_helpers import harness_split, teacher_forced_loglikelihood

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.benchmarks import run_benchmark

CASES = [  # benchmark, folder, num_fewshot
    ("mmlu", "mmlu", 2),
    ("hellaswag", "hellaswag", 1),
    ("arc_easy", "ai2_arc", 2),
    ("arc_challenge", "ai2_arc", 0),
    ("truthfulqa_mc1", "truthful_qa", 0),
    ("truthfulqa_mc2", "truthful_qa", 0),
]


def hand_loglikelihoods(model, tokenizer, record) -> list[float]:
    return [teacher_forced_loglikelihood(model, *harness_split(tokenizer, record["prompt"],
                                                               " " + choice))
            for choice in record["choices"]]


@pytest.mark.parametrize(("name", "folder", "shots"), CASES)
def test_loglikelihoods_and_metrics_match_a_hand_computation(tiny, fixtures_dir, name, folder,
                                                             shots):
    model, tokenizer = tiny
    run = run_benchmark(model, tokenizer, name, data_path=str(fixtures_dir / folder),
                        num_fewshot=shots, batch_size=2)
    per_doc: dict[str, list[float]] = {}
    for record in run.records:
        lls = hand_loglikelihoods(model, tokenizer, record)
        assert record["loglikelihoods"] == pytest.approx(lls, abs=1e-4)
        gold = record["gold"]
        if name == "truthfulqa_mc2":
            probs = np.exp(np.array(lls))
            n_true = _labels(fixtures_dir, record["index"]).index(0)  # harness: split at first 0
            per_doc.setdefault("acc", []).append(probs[:n_true].sum() / probs.sum())
            continue
        per_doc.setdefault("acc", []).append(float(np.argmax(lls) == gold))
        if "acc_norm" in run.metrics:
            lengths = np.array([len(c) for c in record["choices"]], dtype=float)
            per_doc.setdefault("acc_norm", []).append(float(np.argmax(np.array(lls) / lengths)
                                                            == gold))
    for metric, values in per_doc.items():
        assert run.metrics[metric] == pytest.approx(float(np.mean(values)), abs=1e-6)
        stderr = float(np.std(values, ddof=1) / math.sqrt(len(values)))
        assert run.metrics[f"{metric}_stderr"] == pytest.approx(stderr, abs=1e-6)
    assert run.details["num_docs"] == len(run.records) > 0


def _labels(fixtures_dir, index: int) -> list[int]:
    import pyarrow.parquet as pq

    path = fixtures_dir / "truthful_qa" / "multiple_choice" / "validation-00000-of-00001.parquet"
    return pq.read_table(path).to_pylist()[index]["mc2_targets"]["labels"]


def test_fewshot_examples_come_from_the_dev_split_and_limit_cuts_documents(tiny, fixtures_dir):
    model, tokenizer = tiny
    run = run_benchmark(model, tokenizer, "mmlu", data_path=str(fixtures_dir / "mmlu"),
                        num_fewshot=1, limit=4)
    assert len(run.records) == 4
    first, geography = run.records[0]["prompt"], run.records[3]["prompt"]
    assert "Find all c in Z_3" in first and "Answer: B\n\nFind the degree" in first
    assert "most populous country" in geography  # first dev row of its own subject
    assert set(run.details["groups"]) == {"abstract_algebra", "high_school_geography"}
    macro = np.mean([g["acc"] for g in run.details["groups"].values()])
    assert run.metrics["acc_macro"] == pytest.approx(macro)


def test_a_single_file_is_the_scored_split(tiny, fixtures_dir):
    model, tokenizer = tiny
    path = fixtures_dir / "ai2_arc" / "ARC-Easy" / "test-00000-of-00001.parquet"
    run = run_benchmark(model, tokenizer, "arc_easy", data_path=str(path), num_fewshot=1)
    assert len(run.records) == 4
    assert run.records[0]["prompt"].count("Question:") == 2


def test_row_errors_name_the_file_and_row(tiny, tmp_path):
    model, tokenizer = tiny
    (tmp_path / "validation.jsonl").write_text(
        '{"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "ctx": "b c", '
        '"endings": ["x", "y"], "label": ""}\n'
    )
    with pytest.raises(AutotrainError, match=r"validation.jsonl row 0: 'label' must be a digit"):
        run_benchmark(model, tokenizer, "hellaswag", data_path=str(tmp_path))
