"""ROUGE-1/2/L/Lsum F-measure, scored by torchmetrics' ROUGE functions, summed per example.

Why not torchmetrics' `ROUGEScore` class: it keeps one tensor per example in list states that
are gathered element by element, so under DDP a rank that saw fewer examples than another
waits forever in `compute()` (seen with 4 vs 2 examples on two gloo ranks). Here the state is a
score sum and a count (`MeanScore`), which syncs with one all-reduce whatever the shard sizes.
The per-example scores come from torchmetrics' own tokenization and ROUGE-N/L/Lsum code, and the
tests check them against `ROUGEScore` and against hand computations.

rougeLsum splits sentences on newlines (as Google's `rouge_score` does by default) instead of
torchmetrics' `nltk.sent_tokenize`, which needs nltk's punkt data and would download it at run
time. Put one sentence per line in predictions and references to get summary-level scores.

``rouge`` in a metric list means ROUGE-1, ROUGE-2 and ROUGE-L together (``RougeSet``), the three
numbers papers and the original autotrain report under that name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.metrics.base import (
    MeanScore,
    References,
    TextMetric,
    as_reference_lists,
)

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
#: What the metric name ``rouge`` reports.
ROUGE_SET_KEYS = ("rouge1", "rouge2", "rougeL")


def split_sentences_on_newlines(text: str) -> list[str]:
    """Split a summary into sentences at newlines, dropping empty lines."""
    return [line for line in text.split("\n") if line.strip()]


class Rouge(MeanScore):
    """Mean over examples of one ROUGE variant's F-measure, best reference per example.

    Equals torchmetrics' `ROUGEScore(rouge_keys=rouge_key, accumulate="best")` F-measure for
    rouge1/rouge2/rougeL (and for rougeLsum on one-line texts).

    Args:
        rouge_key: `rouge1` ... `rouge9`, `rougeL` or `rougeLsum`.
        use_stemmer: Porter-stem tokens longer than 3 characters before matching.
        normalizer: Replaces torchmetrics' default (lowercase, non-alphanumerics to spaces).
        tokenizer: Replaces torchmetrics' default whitespace split.
        sentence_splitter: Splits a text into sentences for rougeLsum.
    """

    def __init__(
        self,
        rouge_key: str = "rougeL",
        use_stemmer: bool = False,
        normalizer: Callable[[str], str] | None = None,
        tokenizer: Callable[[str], Sequence[str]] | None = None,
        sentence_splitter: Callable[[str], Sequence[str]] = split_sentences_on_newlines,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        valid = rouge_key in ("rougeL", "rougeLsum") or (
            rouge_key.startswith("rouge") and rouge_key[5:] in [str(n) for n in range(1, 10)]
        )
        if not valid:
            raise AutotrainError(
                f"rouge: rouge_key must be one of {list(ROUGE_KEYS)} (or rouge3..rouge9), "
                f"got {rouge_key!r}"
            )
        self.rouge_key = rouge_key
        self.stemmer = None
        if use_stemmer:
            from nltk.stem.porter import PorterStemmer

            self.stemmer = PorterStemmer()
        self.normalizer = normalizer
        self.tokenizer = tokenizer
        self.sentence_splitter = sentence_splitter

    def _tokens(self, text: str) -> Sequence[str]:
        from torchmetrics.functional.text.rouge import _normalize_and_tokenize_text

        return _normalize_and_tokenize_text(text, self.stemmer, self.normalizer, self.tokenizer)

    def _pair_fmeasure(self, prediction: str, reference: str) -> float:
        from torchmetrics.functional.text import rouge as tm_rouge

        if self.rouge_key == "rougeLsum":
            pred = [self._tokens(s) for s in self.sentence_splitter(prediction)]
            ref = [self._tokens(s) for s in self.sentence_splitter(reference)]
            result = tm_rouge._rouge_lsum_score(pred, ref)
        elif self.rouge_key == "rougeL":
            result = tm_rouge._rouge_l_score(self._tokens(prediction), self._tokens(reference))
        else:
            n_gram = int(self.rouge_key[5:])
            result = tm_rouge._rouge_n_score(
                self._tokens(prediction), self._tokens(reference), n_gram
            )
        return float(result["fmeasure"])

    def score(self, prediction: str, references: Sequence[str]) -> float:
        return max(self._pair_fmeasure(prediction, ref) for ref in references)


def rouge(rouge_key: str = "rougeL", use_stemmer: bool = False, **kwargs: Any) -> TextMetric:
    """One ROUGE variant's mean F-measure as a `TextMetric` reporting `{rouge_key: ...}`.

    Args:
        rouge_key: One of `rouge1`, `rouge2`, `rougeL`, `rougeLsum`.
        use_stemmer: Porter-stem tokens longer than 3 characters before matching.
        **kwargs: Passed to `Rouge` (`normalizer`, `tokenizer`, `sentence_splitter`).
    """
    return TextMetric(rouge_key, Rouge(rouge_key, use_stemmer=use_stemmer, **kwargs))


class RougeSet(TextMetric):
    """Several ROUGE variants from one metric name, reported as ``{rouge1, rouge2, rougeL}``.

    Each variant is its own ``Rouge`` state (a sum and a count), so the values equal the
    single-variant metrics on the same texts, under DDP too.

    Args:
        keys: the variants reported (default ROUGE-1, ROUGE-2 and ROUGE-L).
        use_stemmer: Porter-stem tokens longer than 3 characters before matching.
        **kwargs: Passed to each `Rouge` (`normalizer`, `tokenizer`, `sentence_splitter`).
    """

    def __init__(self, keys: Sequence[str] = ROUGE_SET_KEYS, use_stemmer: bool = False,
                 **kwargs: Any) -> None:
        super().__init__("rouge")
        self.parts = nn.ModuleDict(
            {key: Rouge(key, use_stemmer=use_stemmer, **kwargs) for key in keys})

    def update(self, predictions: Sequence[str], references: References) -> None:
        preds, refs = as_reference_lists(self.name, predictions, references)
        for part in self.parts.values():
            part.update(preds, refs)

    def compute(self) -> dict[str, float]:
        return {key: float(part.compute()) for key, part in self.parts.items()}

    def reset(self) -> None:
        for part in self.parts.values():
            part.reset()


def rouge_set(use_stemmer: bool = False, **kwargs: Any) -> RougeSet:
    """``rouge``: ROUGE-1, ROUGE-2 and ROUGE-L F-measures (`RougeSet`)."""
    return RougeSet(ROUGE_SET_KEYS, use_stemmer=use_stemmer, **kwargs)
