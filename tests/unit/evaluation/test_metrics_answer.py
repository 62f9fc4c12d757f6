"""Exact match, SQuAD token F1, and label accuracy/F1 against hand computations."""

import pytest
import torch
from pytest import approx
from torchmetrics.functional.classification import multiclass_f1_score

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.metrics import get_metric, normalize_answer


def test_squad_normalization_by_hand():
    assert normalize_answer("  The Eiffel-Tower, in   PARIS! ") == "eiffeltower in paris"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("theory") == "theory"  # articles only as whole words


@pytest.mark.parametrize(("normalize", "expected"), [(True, 4 / 5), (False, 1 / 5)])
def test_exact_match_normalization_on_and_off(normalize, expected):
    metric = get_metric("exact_match", normalize=normalize)
    metric.update(["The Beatles!", "paris", "42"], ["beatles", "Paris", "42"])
    metric.update(["a dog", "london"], [["cat", "the  dog"], "paris"])  # any reference may match
    assert metric.compute() == {"exact_match": approx(expected)}


def test_token_f1_by_hand():
    metric = get_metric("token_f1")
    # After normalization: "cat sat on mat" vs "cat sat on red mat": 4 shared tokens.
    metric.update(["The cat sat on the mat."], ["the cat sat on the red mat"])
    metric.update(["blue"], [["red", "Blue!"]])  # best reference counts: 1.0
    metric.update([""], ["something"])  # empty prediction: 0.0
    f1_first = 2 * (4 / 4) * (4 / 5) / (4 / 4 + 4 / 5)
    assert metric.compute()["token_f1"] == approx((f1_first + 1.0 + 0.0) / 3)
    raw = get_metric("token_f1", normalize=False)
    raw.update(["The cat"], ["the cat"])  # "cat" shared only: P = R = 1/2
    assert raw.compute()["token_f1"] == approx(0.5)


PREDICTED = ["Positive", "negative.", "neutral", "positive", "maybe", "negative"]
GOLD = ["positive", "negative", "negative", "positive", "neutral", "neutral"]


def test_label_accuracy_and_f1_with_given_labels():
    labels = ["positive", "negative", "neutral"]
    results = {}
    for name in ("accuracy", "f1_macro", "f1_micro"):
        metric = get_metric(name, labels=labels)
        metric.update(PREDICTED[:3], GOLD[:3])
        metric.update(PREDICTED[3:], GOLD[3:])
        results.update(metric.compute())
    # Normalized predictions: pos, neg, neu, pos, maybe(<other>), neg. Correct: 3 of 6.
    assert results["accuracy"] == approx(3 / 6)
    assert results["f1_micro"] == approx(3 / 6)
    # Per class F1 by hand: positive 1.0; negative tp1 fp1 fn1 -> 0.5; neutral tp0 -> 0.0;
    # <other> (predicted once, never gold) -> 0.0. Macro over the 4 classes that occur.
    assert results["f1_macro"] == approx((1.0 + 0.5 + 0.0 + 0.0) / 4)
    index = {"positive": 0, "negative": 1, "neutral": 2}
    preds = torch.tensor([index.get(normalize_answer(p), 3) for p in PREDICTED])
    target = torch.tensor([index[g] for g in GOLD])
    expected = multiclass_f1_score(preds, target, num_classes=4, average="macro")
    assert results["f1_macro"] == approx(float(expected))


def test_inferred_labels_match_given_labels_and_normalize_off():
    for name in ("accuracy", "f1_macro", "f1_micro"):
        inferred = get_metric(name)
        given = get_metric(name, labels=["neutral", "negative", "positive"])
        for metric in (inferred, given):
            metric.update(PREDICTED, GOLD)
        assert inferred.compute() == approx(given.compute())
    strict = get_metric("accuracy", normalize=False)
    strict.update(PREDICTED, GOLD)
    assert strict.compute()["accuracy"] == approx(1 / 6)  # "Positive", "negative." now wrong


def test_label_errors_name_the_fix():
    metric = get_metric("accuracy", labels=["yes", "no"])
    with pytest.raises(AutotrainError, match="not in labels"):
        metric.update(["yes"], ["maybe"])
    with pytest.raises(AutotrainError, match="exactly one reference"):
        metric.update(["yes"], [["yes", "no"]])
    with pytest.raises(AutotrainError, match="twice"):
        get_metric("f1_macro", labels=["Yes", "yes"])
    with pytest.raises(AutotrainError, match="references"):
        get_metric("exact_match").update(["a", "b"], ["a"])


def test_f1_is_squad_token_f1_as_the_reference_squad_metric_computes_it():
    """`f1` (generated answers) equals torchmetrics' SQuAD v1.1 F1, which follows the official
    evaluation script: normalized bag-of-tokens F1, best reference per question, mean."""
    from torchmetrics.functional.text import squad

    predictions = ["The cat sat on the mat.", "Paris", "blue whale", "42 apples", "a  Dog!"]
    references = [["the cat sat on the red mat"], ["paris, france", "Paris"], ["whale shark"],
                  ["forty-two apples", "42"], ["dog"]]
    metric = get_metric("f1")
    metric.update(predictions[:2], references[:2])
    metric.update(predictions[2:], references[2:])
    expected = squad(
        [{"prediction_text": p, "id": str(i)} for i, p in enumerate(predictions)],
        [{"answers": {"answer_start": [0] * len(r), "text": r}, "id": str(i)}
         for i, r in enumerate(references)],
    )["f1"] / 100
    assert metric.compute() == {"f1": approx(float(expected), abs=1e-6)}
    token_f1 = get_metric("token_f1")
    token_f1.update(predictions, references)
    assert token_f1.compute()["token_f1"] == approx(metric.compute()["f1"])
