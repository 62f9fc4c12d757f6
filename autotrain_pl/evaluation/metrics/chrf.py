"""chrF and chrF++ with sacrebleu's own statistics, summed across DDP ranks.

sacrebleu's ``CHRF.corpus_score`` sums, over segments, a vector of ``[hypothesis n-grams,
reference n-grams, matches]`` for each character order (and word order, for chrF++), taking for
each segment the reference with the best sentence-level F-score, and computes one F-score from
the sums. This metric keeps exactly that vector as its torchmetrics state (``sum`` across
ranks), builds each segment's vector with sacrebleu's ``CHRF`` methods, and computes the score
with sacrebleu's ``_compute_f_score``. It therefore equals ``CHRF(...).corpus_score(...)`` / 100
by construction, including what sacrebleu does with strings shorter than the n-gram order (those
orders are left out of the average: its "effective order"), with whitespace (removed before
character n-grams unless ``whitespace=True``), with several references and with unicode.

torchmetrics' ``CHRFScore`` is not used: it averages over every order even when no string has
that many characters, so identical short answers ("50" against "50") score 0.33, not 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from sacrebleu.metrics import CHRF
from torch import Tensor
from torchmetrics import Metric

from autotrain_pl.evaluation.metrics.base import TextMetric


class ChrF(Metric):
    """Corpus chrF (``n_word_order=0``) or chrF++ (``n_word_order=2``) on a 0-1 scale.

    The only deviation from sacrebleu is the scale (sacrebleu reports 0-100) and that nothing
    seen gives NaN (sacrebleu refuses an empty corpus). It relies on sacrebleu's ``CHRF``
    internals (``_extract_reference_info``, ``_compute_segment_statistics``,
    ``_compute_f_score``), stable since sacrebleu 2.0; the tests compare against its public
    ``corpus_score``.

    Args:
        n_char_order: Character n-gram order (sacrebleu ``char_order``, default 6).
        n_word_order: Word n-gram order (sacrebleu ``word_order``): 0 for chrF, 2 for chrF++.
        beta: Weight of recall against precision (default 2).
        lowercase: Compare case-insensitively.
        whitespace: Keep whitespace inside character n-grams.
        eps_smoothing: sacrebleu's ``eps_smoothing`` (the chrF++.py / NLTK / Moses smoothing)
            instead of the effective-order average; off by default, as in sacrebleu.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    statistics: Tensor
    segments: Tensor

    def __init__(
        self,
        n_char_order: int = 6,
        n_word_order: int = 0,
        beta: float = 2.0,
        lowercase: bool = False,
        whitespace: bool = False,
        eps_smoothing: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.chrf = CHRF(
            char_order=n_char_order,
            word_order=n_word_order,
            beta=beta,
            lowercase=lowercase,
            whitespace=whitespace,
            eps_smoothing=eps_smoothing,
        )
        size = 3 * (n_char_order + n_word_order)
        # int64 counts: exact sums on every device and under DDP (MPS has int64, not float64).
        self.add_state("statistics", torch.zeros(size, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("segments", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def segment_statistics(self, prediction: str, references: Sequence[str]) -> list[int]:
        """sacrebleu's ``[hyp, ref, match]`` counts per order against the best reference."""
        chrf = self.chrf
        refs = chrf._extract_reference_info([chrf._preprocess_segment(r) for r in references])
        return chrf._compute_segment_statistics(chrf._preprocess_segment(prediction), refs)

    def update(self, preds: Sequence[str], target: Sequence[Sequence[str]]) -> None:
        """Add the statistics of a batch of predictions and their reference lists."""
        rows = [self.segment_statistics(p, refs) for p, refs in zip(preds, target, strict=True)]
        if not rows:
            return
        batch = torch.tensor(rows, dtype=torch.long).sum(0)
        self.statistics += batch.to(self.statistics.device)
        self.segments += len(rows)

    def compute(self) -> Tensor:
        """The corpus score from the summed statistics; NaN when nothing was seen."""
        if int(self.segments) == 0:
            return torch.tensor(float("nan"))
        score = self.chrf._compute_f_score([int(v) for v in self.statistics.tolist()]) / 100
        return torch.tensor(score, dtype=torch.float64)


def chrf(
    n_char_order: int = 6,
    n_word_order: int = 0,
    beta: float = 2.0,
    lowercase: bool = False,
    whitespace: bool = False,
    eps_smoothing: bool = False,
) -> TextMetric:
    """Corpus chrF as sacrebleu's ``CHRF()`` computes it, reported as ``{"chrf": ...}`` (0-1)."""
    metric = ChrF(n_char_order, n_word_order, beta, lowercase, whitespace, eps_smoothing)
    return TextMetric("chrf", metric)


def chrf_plus_plus(
    n_char_order: int = 6,
    n_word_order: int = 2,
    beta: float = 2.0,
    lowercase: bool = False,
    whitespace: bool = False,
    eps_smoothing: bool = False,
) -> TextMetric:
    """Corpus chrF++ as sacrebleu's ``CHRF(word_order=2)``, reported as ``{"chrf++": ...}``."""
    metric = ChrF(n_char_order, n_word_order, beta, lowercase, whitespace, eps_smoothing)
    return TextMetric("chrf++", metric)
