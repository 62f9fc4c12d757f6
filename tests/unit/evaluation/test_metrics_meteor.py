"""METEOR against nltk's meteor_score with WordNet synonyms switched off."""

import inspect

import pytest
from nltk.translate.meteor_score import meteor_score as nltk_meteor_score
from pytest import approx

from autotrain_pl.evaluation.metrics import get_metric, meteor_tokenize, sentence_meteor
from autotrain_pl.evaluation.metrics.meteor import porter_stem


class NoSynonyms:
    """Stands in for nltk's WordNet reader: no synsets, so nltk skips the synonym stage."""

    def synsets(self, word: str) -> list:
        return []


PAIRS = [
    # exact matches, one substitution
    ("the cat sat on the mat", ["the cat is on the mat"]),
    # stem matches: jumps/jumped, dogs/dog
    (
        "the quick brown fox jumps over the lazy dogs",
        ["a quick brown fox jumped over the lazy dog"],
    ),
    # reordering: fragmentation penalty with several chunks
    ("on the mat the cat sat quietly", ["the cat sat quietly on the mat"]),
    # repeated words (tie-breaking of the alignment) and punctuation tokens
    ("the the cat, the dog.", ["the dog and the cat, the end."]),
    # nothing matches
    ("completely unrelated words", ["the cat sat on the mat"]),
    # several references: the best one counts
    (
        "It is a guide to action which ensures that the military always obeys the party",
        [
            "It is a guide to action that ensures that the military will forever heed Party commands",
            "It is the practical guide for the army always to heed the directions of the party",
        ],
    ),
]


def test_nltk_signature_takes_a_wordnet_reader():
    assert "wordnet" in inspect.signature(nltk_meteor_score).parameters


@pytest.mark.parametrize(("prediction", "references"), PAIRS)
def test_sentence_meteor_matches_nltk_without_synonyms(prediction, references):
    expected = nltk_meteor_score(
        [meteor_tokenize(ref) for ref in references],
        meteor_tokenize(prediction),
        wordnet=NoSynonyms(),
    )
    metric = get_metric("meteor")
    metric.update([prediction], [references])
    assert metric.compute()["meteor"] == approx(expected, abs=1e-6)


def test_corpus_meteor_is_mean_of_sentence_scores():
    expected = [
        nltk_meteor_score(
            [meteor_tokenize(ref) for ref in refs], meteor_tokenize(pred), wordnet=NoSynonyms()
        )
        for pred, refs in PAIRS
    ]
    metric = get_metric("meteor")
    metric.update([pred for pred, _ in PAIRS[:2]], [refs for _, refs in PAIRS[:2]])
    metric.update([pred for pred, _ in PAIRS[2:]], [refs for _, refs in PAIRS[2:]])
    assert metric.compute()["meteor"] == approx(sum(expected) / len(expected), abs=1e-6)
    assert 0 < expected[1] < 1 and expected[4] == 0.0


def test_stem_stage_adds_matches():
    hypothesis, reference = meteor_tokenize("the fox jumps"), meteor_tokenize("the fox jumped")
    with_stems = sentence_meteor(hypothesis, reference, porter_stem)
    exact_only = sentence_meteor(hypothesis, reference, lambda word: word)
    assert with_stems > exact_only > 0
