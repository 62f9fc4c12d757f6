"""chrF and chrF++ against sacrebleu's `CHRF.corpus_score` on many random corpora.

The corpora mix what trips n-gram averages: answers shorter than the character order ("50",
"a", ""), several references of different counts per prediction, unicode (accents, CJK, emoji),
punctuation glued to words (chrF++ word n-grams split it off) and runs of spaces and tabs.
"""

import random

import pytest
import torch
from pytest import approx
from sacrebleu.metrics import CHRF

from autotrain_pl.evaluation.metrics import get_metric
from autotrain_pl.evaluation.metrics.chrf import ChrF

WORDS = [
    "50", "5", "a", "I", "cat", "cats", "the", "The", "sat", "on", "mat.", "(hi)", "don't", "yes!",
    "café", "naïve", "日本語", "東京", "😀", "emoji😀ok", "Straße", "STRASSE", "x-y", "42,",
]  # fmt: skip
SPACES = [" ", " ", " ", "  ", "\t", " \n "]


def _text(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.08:
        return ""
    if kind < 0.3:  # shorter than the character order
        return rng.choice(["50", "5", "a", "ab", "日本", "😀", "no", "1 2"])
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 8))]
    out = words[0]
    for word in words[1:]:
        out += rng.choice(SPACES) + word
    return rng.choice(["", " "]) + out + rng.choice(["", " ", "\t"])


def _corpus(rng: random.Random) -> tuple[list[str], list[list[str]]]:
    size = rng.randint(1, 6)
    predictions, references = [], []
    for _ in range(size):
        prediction = _text(rng)
        refs = [_text(rng) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.3:  # the prediction is one of the references
            refs[rng.randrange(len(refs))] = prediction
        predictions.append(prediction)
        references.append(refs)
    return predictions, references


def _sacrebleu(predictions, references, **options) -> float:
    """sacrebleu's corpus score (0-1) with a variable number of references per segment."""
    streams = max(len(refs) for refs in references)
    padded = [[refs[i] if i < len(refs) else None for refs in references] for i in range(streams)]
    return CHRF(**options).corpus_score(predictions, padded).score / 100


def _ours(name: str, predictions, references, rng: random.Random, **options) -> float:
    metric = get_metric(name, **options)
    start = 0
    while start < len(predictions):  # random batches: state must accumulate exactly
        stop = start + rng.randint(1, 3)
        metric.update(predictions[start:stop], references[start:stop])
        start = stop
    return metric.compute()[name]


VARIANTS = [
    ("chrf", {}, {}),
    ("chrf++", {}, {"word_order": 2}),
    ("chrf", {"lowercase": True}, {"lowercase": True}),
    ("chrf", {"whitespace": True}, {"whitespace": True}),
    ("chrf++", {"beta": 1}, {"word_order": 2, "beta": 1}),
    ("chrf", {"n_char_order": 3, "eps_smoothing": True}, {"char_order": 3, "eps_smoothing": True}),
]


@pytest.mark.parametrize(("name", "ours", "theirs"), VARIANTS,
                         ids=["chrf", "chrf++", "lowercase", "whitespace", "beta1", "eps"])
def test_equals_sacrebleu_on_random_corpora(name, ours, theirs):
    rng = random.Random(f"{name}{sorted(ours.items())}")
    for _ in range(150):
        predictions, references = _corpus(rng)
        expected = _sacrebleu(predictions, references, **theirs)
        assert _ours(name, predictions, references, rng, **ours) == approx(expected, abs=1e-12), (
            predictions, references)


@pytest.mark.parametrize(("prediction", "reference"), [
    ("50", "50"), ("5", "5"), ("yes", "yes"), ("日本", "日本"), ("the cat", "the  cat"),
])  # fmt: skip
def test_identical_short_answers_score_one_as_in_sacrebleu(prediction, reference):
    for name, word_order in (("chrf", 0), ("chrf++", 2)):
        expected = _sacrebleu([prediction], [[reference]], word_order=word_order)
        assert expected == approx(1.0)
        assert _ours(name, [prediction], [[reference]], random.Random(0)) == approx(expected)


def test_statistics_sum_across_ranks():
    """The state is sacrebleu's per-order count vector, summed: ranks add up to one corpus."""
    rng = random.Random(7)
    predictions, references = _corpus(rng)
    while len(predictions) < 4:
        more = _corpus(rng)
        predictions, references = predictions + more[0], references + more[1]
    whole, first, second = ChrF(n_word_order=2), ChrF(n_word_order=2), ChrF(n_word_order=2)
    whole.update(predictions, references)
    first.update(predictions[:2], references[:2])
    second.update(predictions[2:], references[2:])
    assert torch.equal(first.statistics + second.statistics, whole.statistics)
    assert first.statistics.dtype == torch.long and first._reductions["statistics"] is not None
    expected = _sacrebleu(predictions, references, word_order=2)
    assert float(whole.compute()) == approx(expected, abs=1e-12)


def test_nothing_seen_is_nan():
    assert torch.isnan(ChrF().compute())
