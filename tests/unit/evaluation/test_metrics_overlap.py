"""BLEU, sacreBLEU, chrF and ROUGE against sacrebleu and hand computations."""

import sacrebleu as sacrebleu_lib
from pytest import approx

from autotrain_pl.evaluation.metrics import get_metric

PREDICTIONS = [
    "The cat is on the mat, today.",
    "A quick brown fox jumps over the lazy dog!",
    "hello there my friend",
]
REFERENCES = [
    "The cat sat on the mat, today.",
    "The quick brown fox jumped over the lazy dog!",
    "hello there my dear friend",
]
SECOND_REFERENCES = [
    "There is a cat on the mat today.",
    "A fast brown fox leaps over a lazy dog!",
    "hi there my friend",
]


def _score(name: str, predictions, references, **kwargs) -> float:
    metric = get_metric(name, **kwargs)
    metric.update(predictions[:1], references[:1])  # two updates: state must accumulate
    metric.update(predictions[1:], references[1:])
    return metric.compute()[name]


def test_bleu_matches_sacrebleu_without_tokenization():
    expected = sacrebleu_lib.corpus_bleu(
        PREDICTIONS, [REFERENCES], smooth_method="none", tokenize="none"
    ).score
    assert _score("bleu", PREDICTIONS, REFERENCES) == approx(expected / 100, abs=1e-5)


def test_sacrebleu_matches_corpus_bleu_with_multiple_references():
    references = [list(pair) for pair in zip(REFERENCES, SECOND_REFERENCES, strict=True)]
    expected = sacrebleu_lib.corpus_bleu(
        PREDICTIONS, [REFERENCES, SECOND_REFERENCES], smooth_method="none"
    ).score
    assert _score("sacrebleu", PREDICTIONS, references) == approx(expected / 100, abs=1e-5)


def test_chrf_matches_sacrebleu():
    expected = sacrebleu_lib.corpus_chrf(PREDICTIONS, [REFERENCES]).score
    assert _score("chrf", PREDICTIONS, REFERENCES) == approx(expected / 100, abs=1e-4)


def test_rouge1_and_rougeL_by_hand():
    prediction, reference = "the cat was found under the bed", "the cat was under the bed"
    # Unigram overlap: the x2, cat, was, under, bed = 6 of 7 predicted and 6 of 6 reference.
    precision, recall = 6 / 7, 6 / 6
    expected_f1 = 2 * precision * recall / (precision + recall)
    assert _score("rouge1", [prediction] * 2, [reference] * 2) == approx(expected_f1, abs=1e-6)
    # LCS "the cat was under the bed" has length 6 as well.
    assert _score("rougeL", [prediction] * 2, [reference] * 2) == approx(expected_f1, abs=1e-6)
    # Bigrams: the cat, cat was, under the, the bed = 4 of 6 predicted, 4 of 5 reference.
    precision2, recall2 = 4 / 6, 4 / 5
    expected_f2 = 2 * precision2 * recall2 / (precision2 + recall2)
    assert _score("rouge2", [prediction] * 2, [reference] * 2) == approx(expected_f2, abs=1e-6)


def test_rougeLsum_splits_sentences_on_newlines_without_nltk_data():
    prediction = "the cat sat\nthe dog ran"
    reference = "the cat ran\nthe dog sat"
    # Whole-text LCS: "the cat the dog" = 4 of 6 tokens on both sides.
    assert _score("rougeL", [prediction] * 2, [reference] * 2) == approx(4 / 6, abs=1e-6)
    # Summary-level: each reference sentence's union LCS with the predicted sentences covers
    # all of its three tokens, so all six tokens are hits.
    assert _score("rougeLsum", [prediction] * 2, [reference] * 2) == approx(1.0, abs=1e-6)
    # One-line texts: rougeLsum equals rougeL.
    one_line = _score("rougeLsum", PREDICTIONS, REFERENCES)
    assert one_line == approx(_score("rougeL", PREDICTIONS, REFERENCES), abs=1e-6)


def test_rouge_takes_the_best_reference():
    single = _score("rouge1", ["hello there my friend"] * 2, ["hi friend"] * 2)
    best = _score(
        "rouge1", ["hello there my friend"] * 2, [["hi friend", "hello there my friend"]] * 2
    )
    assert single < best == approx(1.0)


def test_rouge_equals_torchmetrics_rougescore():
    from torchmetrics.text import ROUGEScore

    references = [list(pair) for pair in zip(REFERENCES, SECOND_REFERENCES, strict=True)]
    for use_stemmer in (False, True):
        upstream = ROUGEScore(rouge_keys=("rouge1", "rouge2", "rougeL"), use_stemmer=use_stemmer)
        upstream.update(PREDICTIONS, references)
        expected = upstream.compute()
        for key in ("rouge1", "rouge2", "rougeL"):
            ours = _score(key, PREDICTIONS, references, use_stemmer=use_stemmer)
            assert ours == approx(float(expected[f"{key}_fmeasure"]), abs=1e-6)
