"""N-gram overlap metrics: BLEU and sacreBLEU, backed by torchmetrics (ROUGE: rouge.py; chrF: chrf.py).

All scores are reported on a 0-1 scale (torchmetrics' convention), not sacrebleu's 0-100.
"""

from __future__ import annotations

from typing import Any

from torchmetrics.text import BLEUScore, SacreBLEUScore

from autotrain_pl.evaluation.metrics.base import TextMetric


def bleu(n_gram: int = 4, smooth: bool = False, **kwargs: Any) -> TextMetric:
    """Corpus BLEU on whitespace tokens (torchmetrics `BLEUScore`), reported as `{"bleu": ...}`.

    Use it for text that is already tokenized; for raw detokenized text prefer `sacrebleu`,
    whose tokenizer makes scores comparable across papers.
    """
    return TextMetric("bleu", BLEUScore(n_gram=n_gram, smooth=smooth, **kwargs))


def sacrebleu(
    n_gram: int = 4,
    smooth: bool = False,
    tokenize: str = "13a",
    lowercase: bool = False,
    **kwargs: Any,
) -> TextMetric:
    """Corpus sacreBLEU (torchmetrics `SacreBLEUScore`, 13a tokenizer), as `{"sacrebleu": ...}`.

    Equals `sacrebleu.corpus_bleu(..., smooth_method="none").score / 100` by default.
    """
    metric = SacreBLEUScore(
        n_gram=n_gram, smooth=smooth, tokenize=tokenize, lowercase=lowercase, **kwargs
    )
    return TextMetric("sacrebleu", metric)

