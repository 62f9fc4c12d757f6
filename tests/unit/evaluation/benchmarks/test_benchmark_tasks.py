"""Prompt formats, few-shot sampling and per-document metrics, as lm-evaluation-harness has them."""

import math
import random

import pytest

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.benchmarks import (
    MultipleChoiceDoc,
    available_benchmarks,
    choice_metrics,
    get_benchmark,
    mc2_score,
)
from autotrain_pl.evaluation.benchmarks.hellaswag import preprocess
from autotrain_pl.evaluation.benchmarks.loading import load_rows
from autotrain_pl.evaluation.benchmarks.truthfulqa import QA_PREAMBLE


def test_registry_names_and_errors():
    assert available_benchmarks() == ["arc", "arc_challenge", "arc_easy", "hellaswag", "mmlu",
                                      "truthfulqa", "truthfulqa_mc1", "truthfulqa_mc2"]
    # Short names mean what the Open LLM Leaderboard reported under them.
    assert type(get_benchmark("arc")).__name__ == "ARCChallenge"
    assert type(get_benchmark("TruthfulQA")).__name__ == "TruthfulQAMC2"
    with pytest.raises(AutotrainError, match="not known"):
        get_benchmark("gsm8k")
    with pytest.raises(AutotrainError, match="num_fewshot=0"):
        get_benchmark("truthfulqa_mc2").check_num_fewshot(5)
    assert type(get_benchmark(" ARC-Easy ")).__name__ == "ARCEasy"
    with pytest.raises(AutotrainError, match="benchmark 'gsm8k' is not known"):
        get_benchmark("gsm8k")


def test_benchmarks_by_import_path_and_registration():
    from autotrain_pl.evaluation.benchmarks import ARCEasy
    from autotrain_pl.evaluation.benchmarks.registry import BENCHMARKS, register_benchmark

    bench = get_benchmark("autotrain_pl.evaluation.benchmarks.arc.ARCEasy", fewshot_seed=7)
    assert type(bench) is ARCEasy
    with pytest.raises(AutotrainError, match="not a Benchmark subclass"):
        get_benchmark("autotrain_pl.evaluation.benchmarks.base.MultipleChoiceDoc")

    @register_benchmark("test_easy_copy")
    class EasyCopy(ARCEasy):
        name = "test_easy_copy"

    try:
        assert "test_easy_copy" in available_benchmarks()
        assert type(get_benchmark("test_easy_copy")) is EasyCopy
        with pytest.raises(AutotrainError, match="already registered"):
            register_benchmark("mmlu")(EasyCopy)
    finally:
        BENCHMARKS.unregister("test_easy_copy")


def test_mmlu_prompt_matches_the_harness_template():
    mmlu = get_benchmark("mmlu")
    row = {"question": "  What is 2+2? ", "subject": "elementary_mathematics",
           "choices": ["3", "4", "5", "6"], "answer": 1}
    shot = {"question": "What is 1+1?", "subject": "elementary_mathematics",
            "choices": ["2", "1", "0", "3"], "answer": 0}
    doc, example = mmlu.to_doc(row), mmlu.to_doc(shot)
    assert mmlu.context(doc, [example]) == (
        "The following are multiple choice questions (with answers) about elementary "
        "mathematics.\n\n"
        "What is 1+1?\nA. 2\nB. 1\nC. 0\nD. 3\nAnswer: A\n\n"
        "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:"
    )
    assert mmlu.continuations(doc) == [" A", " B", " C", " D"]
    assert doc.gold == 1
    assert mmlu.to_doc({**row, "answer": "C"}).gold == 2  # csv copies may use letters


def test_hellaswag_preprocessing_matches_the_harness():
    # strip first, then drop brackets: the leading space stays, as in the harness
    assert preprocess(" [header] How to x [title] Gather tools.  ") == " How to x. Gather tools."
    hellaswag = get_benchmark("hellaswag")
    doc = hellaswag.to_doc({
        "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.",
        "ctx_b": "he", "ctx": "", "endings": ["is up.", "[step] is down.", "a", "b"],
        "label": "1",
    })
    assert doc.text == "Roof shingle removal: A man is sitting on a roof. He"
    assert doc.choices == ("is up.", " is down.", "a", "b") and doc.gold == 1


def test_arc_gold_index_comes_from_the_answer_key_label():
    arc = get_benchmark("arc_easy")
    doc = arc.to_doc({"id": "x", "question": "Pick two.", "answerKey": "2",
                      "choices": {"text": ["one", "two", "three"], "label": ["1", "2", "3"]}})
    assert doc.text == "Question: Pick two.\nAnswer:" and doc.gold == 1
    assert arc.continuations(doc) == [" one", " two", " three"]


def test_truthfulqa_prompt_has_the_six_shot_preamble():
    row = {"question": "Is the sky blue?",
           "mc1_targets": {"choices": ["Yes.", "No."], "labels": [1, 0]},
           "mc2_targets": {"choices": ["Yes.", "Often.", "No."], "labels": [1, 1, 0]}}
    mc1 = get_benchmark("truthfulqa_mc1").to_doc(row)
    mc2 = get_benchmark("truthfulqa_mc2").to_doc(row)
    assert mc1.text == QA_PREAMBLE + "\n\nQ: Is the sky blue?\nA:"
    assert QA_PREAMBLE.startswith("Q: What is human life expectancy in the United States?\nA: ")
    assert QA_PREAMBLE.endswith("A: The 1992 Olympics were held in Barcelona, Spain.")
    assert mc1.choices == ("Yes.", "No.") and mc2.labels == (1, 1, 0)


def test_random_fewshot_draws_equal_the_harness_sampler():
    arc = get_benchmark("arc_easy")
    pool = [MultipleChoiceDoc(f"q{i}", ("a", "b"), 0) for i in range(30)]
    docs = [MultipleChoiceDoc(f"test{i}", ("a", "b"), 1) for i in range(4)]
    harness_rnd = random.Random(1234)  # one generator per task, consumed doc by doc
    for doc in docs:
        assert arc.select_fewshot(doc, pool, 5) == harness_rnd.sample(pool, 5)


def test_fewshot_from_the_scored_split_never_includes_the_document():
    arc = get_benchmark("arc_easy")
    pool = [MultipleChoiceDoc(f"q{i}", ("a", "b"), 0) for i in range(3)]
    for doc in pool:
        chosen = arc.select_fewshot(doc, pool, 2, same_split=True)
        assert doc not in chosen and len(chosen) == 2


def test_mmlu_fewshot_takes_the_first_dev_rows_of_the_same_subject():
    mmlu = get_benchmark("mmlu")
    pool = [MultipleChoiceDoc(f"{s}{i}", ("A", "B", "C", "D"), 0, group=s)
            for s in ("algebra", "geo") for i in range(3)]
    doc = MultipleChoiceDoc("q", ("A", "B", "C", "D"), 0, group="geo")
    assert [d.text for d in mmlu.select_fewshot(doc, pool, 2)] == ["geo0", "geo1"]
    with pytest.raises(AutotrainError, match="only 3 examples for 'geo'"):
        mmlu.select_fewshot(doc, pool, 4)


def test_acc_norm_divides_by_choice_characters():
    doc = MultipleChoiceDoc("q", ("a much longer answer", "short"), gold=0)
    lls = [-10.0, -4.0]  # raw: "short" wins; per character: -0.5 vs -0.8, the long one wins
    assert choice_metrics(doc, lls) == {"acc": 0.0, "acc_norm": 1.0}
    assert choice_metrics(doc, [-1.0, -1.0])["acc"] == 1.0  # ties go to the first choice


def test_mc2_is_the_normalized_true_probability_mass():
    lls = [-1.0, -2.0, -0.5, -3.0]
    p = [math.exp(x) for x in lls]
    assert mc2_score([1, 1, 0, 0], lls) == pytest.approx((p[0] + p[1]) / sum(p))
    assert mc2_score([1, 0], [-2000.0, -2001.0]) == pytest.approx(1 / (1 + math.exp(-1)))
    with pytest.raises(AutotrainError, match="true and one false"):
        mc2_score([1, 1], lls[:2])


def test_local_layouts_and_column_errors(fixtures_dir):
    mmlu = get_benchmark("mmlu")
    rows, where = load_rows(str(fixtures_dir / "mmlu"), mmlu.hub_path, "all", "dev",
                            mmlu.required_columns, benchmark="mmlu")
    assert len(rows) == 6 and "dev-00000-of-00001.parquet" in where
    csv_rows, _ = load_rows(str(fixtures_dir / "mmlu_csv"), mmlu.hub_path, "all", "test",
                            mmlu.required_columns, benchmark="mmlu")
    assert csv_rows[0]["choices"] == ["0", "2", "1", "4"]  # JSON cells are decoded
    with pytest.raises(AutotrainError, match=r"bad_mmlu/test.jsonl: missing columns \['subject', "
                                             r"'answer'\]"):
        load_rows(str(fixtures_dir / "bad_mmlu"), mmlu.hub_path, "all", "test",
                  mmlu.required_columns, benchmark="mmlu")
    with pytest.raises(AutotrainError, match="no mmlu files for split 'validation'"):
        load_rows(str(fixtures_dir / "mmlu"), mmlu.hub_path, "all", "validation",
                  mmlu.required_columns, benchmark="mmlu")


def test_hub_loading_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(AutotrainError, match="local copy"):
        load_rows(None, "cais/mmlu-does-not-exist-here", "all", "test", ("question",),
                  benchmark="mmlu")
