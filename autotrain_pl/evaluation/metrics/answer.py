"""Short-answer metrics: exact match and SQuAD token-level F1, with SQuAD normalization.

Generated answers differ from references in case, punctuation, articles and spacing far more
often than in content, so both metrics normalize by default (as the SQuAD evaluation script does).

``f1`` is SQuAD token F1 (the same score as ``token_f1``, reported under ``f1``): for generated
answers that is what "F1" means in SQuAD, DROP, CoQA and lm-evaluation-harness's generative
tasks. F1 over class labels is ``f1_macro`` / ``f1_micro`` (``classification.py``).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

from autotrain_pl.evaluation.metrics.base import MeanScore, TextMetric

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lowercase, drop punctuation, drop articles a/an/the, collapse spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction: str, reference: str, normalize: bool = True) -> float:
    """1.0 when the (normalized) strings are equal, else 0.0."""
    if normalize:
        return float(normalize_answer(prediction) == normalize_answer(reference))
    return float(prediction == reference)


def token_f1_score(prediction: str, reference: str, normalize: bool = True) -> float:
    """SQuAD token-level F1 between two strings (bag of whitespace tokens).

    Two empty answers score 1.0 and one empty answer scores 0.0, as in SQuAD v2.
    """
    if normalize:
        prediction, reference = normalize_answer(prediction), normalize_answer(reference)
    pred_tokens, ref_tokens = prediction.split(), reference.split()
    if not pred_tokens or not ref_tokens:
        return float(pred_tokens == ref_tokens)
    num_same = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


class ExactMatch(MeanScore):
    """Fraction of predictions equal to at least one reference (normalized unless told not to).

    Args:
        normalize: Apply SQuAD normalization to both sides before comparing.
    """

    def __init__(self, normalize: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.normalize = normalize

    def score(self, prediction: str, references: Sequence[str]) -> float:
        return max(exact_match_score(prediction, ref, self.normalize) for ref in references)


class TokenF1(MeanScore):
    """Mean over examples of the best SQuAD token F1 against any reference.

    Args:
        normalize: Apply SQuAD normalization to both sides before tokenizing.
    """

    def __init__(self, normalize: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.normalize = normalize

    def score(self, prediction: str, references: Sequence[str]) -> float:
        return max(token_f1_score(prediction, ref, self.normalize) for ref in references)


def exact_match(normalize: bool = True) -> TextMetric:
    """Exact match as a `TextMetric` reporting `{"exact_match": ...}`."""
    return TextMetric("exact_match", ExactMatch(normalize=normalize))


def token_f1(normalize: bool = True) -> TextMetric:
    """SQuAD token F1 as a `TextMetric` reporting `{"token_f1": ...}`."""
    return TextMetric("token_f1", TokenF1(normalize=normalize))


def f1(normalize: bool = True) -> TextMetric:
    """SQuAD token F1 of generated answers, reported as `{"f1": ...}` (see the module docstring).

    The same score as `token_f1`; for F1 over class labels use `f1_macro` or `f1_micro`.
    """
    return TextMetric("f1", TokenF1(normalize=normalize))
