"""METEOR with exact and Porter-stem matching (no WordNet synonyms).

torchmetrics has no METEOR, and nltk's `meteor_score` needs the WordNet corpus, which would have
to be downloaded at run time. This module keeps nltk's alignment and formula exactly but runs
only its first two matching stages (exact, then stem), which need no data files.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import pairwise
from typing import Any

from autotrain_pl.evaluation.metrics.base import MeanScore, TextMetric

_TOKEN = re.compile(r"\w+|[^\w\s]")

Enumerated = list[tuple[int, str]]


def meteor_tokenize(text: str) -> list[str]:
    """Lowercased words and single punctuation marks (a download-free word tokenizer)."""
    return _TOKEN.findall(text.lower())


@lru_cache(maxsize=1)
def _porter_stemmer() -> Any:
    from nltk.stem.porter import PorterStemmer  # lazy: importing nltk costs ~0.3 s

    return PorterStemmer()


@lru_cache(maxsize=65536)
def porter_stem(word: str) -> str:
    """nltk's Porter stem of a word, cached: METEOR stems the same words over and over."""
    return _porter_stemmer().stem(word)


def _match(
    hyp: Enumerated, ref: Enumerated
) -> tuple[list[tuple[int, int]], Enumerated, Enumerated]:
    """Match equal words, each hypothesis word (last first) to the last unused equal ref word.

    Same order and tie-breaking as nltk's `_match_enums`, so alignments are identical.
    """
    positions: dict[str, list[int]] = defaultdict(list)
    for j, (_, word) in enumerate(ref):
        positions[word].append(j)
    matches: list[tuple[int, int]] = []
    used_hyp: set[int] = set()
    used_ref: set[int] = set()
    for i in reversed(range(len(hyp))):
        candidates = positions.get(hyp[i][1])
        if candidates:
            j = candidates.pop()
            used_hyp.add(i)
            used_ref.add(j)
            matches.append((hyp[i][0], ref[j][0]))
    rest_hyp = [pair for i, pair in enumerate(hyp) if i not in used_hyp]
    rest_ref = [pair for j, pair in enumerate(ref) if j not in used_ref]
    return matches, rest_hyp, rest_ref


def _count_chunks(matches: list[tuple[int, int]]) -> int:
    """Fewest runs of matches adjacent in both hypothesis and reference (matches sorted)."""
    chunks = 1
    for (h0, r0), (h1, r1) in pairwise(matches):
        if not (h1 == h0 + 1 and r1 == r0 + 1):
            chunks += 1
    return chunks


def sentence_meteor(
    hypothesis: Sequence[str],
    reference: Sequence[str],
    stem: Callable[[str], str],
    alpha: float = 0.9,
    beta: float = 3.0,
    gamma: float = 0.5,
) -> float:
    """METEOR of one tokenized hypothesis against one tokenized reference.

    Fmean = P*R / (alpha*P + (1-alpha)*R); penalty = gamma * (chunks/matches)**beta;
    score = Fmean * (1 - penalty); 0.0 when nothing matches.
    """
    hyp = list(enumerate(hypothesis))
    ref = list(enumerate(reference))
    if not hyp or not ref:
        return 0.0
    exact, rest_hyp, rest_ref = _match(hyp, ref)
    stemmed_hyp = [(i, stem(word)) for i, word in rest_hyp]
    stemmed_ref = [(j, stem(word)) for j, word in rest_ref]
    stemmed, _, _ = _match(stemmed_hyp, stemmed_ref)
    matches = sorted(exact + stemmed, key=lambda pair: pair[0])
    if not matches:
        return 0.0
    precision = len(matches) / len(hyp)
    recall = len(matches) / len(ref)
    fmean = precision * recall / (alpha * precision + (1 - alpha) * recall)
    penalty = gamma * (_count_chunks(matches) / len(matches)) ** beta
    return (1 - penalty) * fmean


class Meteor(MeanScore):
    """Mean sentence METEOR using exact + Porter-stem matching only (no WordNet synonyms).

    With `alpha=0.9, beta=3, gamma=0.5` (nltk's defaults) it equals
    `nltk.translate.meteor_score.meteor_score` on the same tokens whenever no synonym match
    would apply; where WordNet synonyms would match, this score is lower than nltk's. Several
    references: the best score counts, as in nltk.

    Args:
        alpha: Weight of precision vs recall in Fmean.
        beta: Shape of the fragmentation penalty.
        gamma: Weight of the fragmentation penalty.
        tokenizer: Splits a string into tokens (lowercased afterwards); the default splits
            words and punctuation marks with a regex, no nltk data needed.
    """

    def __init__(
        self,
        alpha: float = 0.9,
        beta: float = 3.0,
        gamma: float = 0.5,
        tokenizer: Callable[[str], list[str]] = meteor_tokenize,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.tokenizer = tokenizer

    def score(self, prediction: str, references: Sequence[str]) -> float:
        hyp = self._tokens(prediction)
        return max(
            sentence_meteor(hyp, self._tokens(ref), porter_stem, self.alpha, self.beta, self.gamma)
            for ref in references
        )

    def _tokens(self, text: str) -> list[str]:
        # Lowercase after tokenizing too, as nltk's `preprocess=str.lower` does.
        return [token.lower() for token in self.tokenizer(text)]


def meteor(alpha: float = 0.9, beta: float = 3.0, gamma: float = 0.5) -> TextMetric:
    """METEOR (exact + stem stages, no synonyms) as a `TextMetric` reporting `{"meteor": ...}`."""
    return TextMetric("meteor", Meteor(alpha=alpha, beta=beta, gamma=gamma))
