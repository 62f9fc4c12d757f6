"""N-gram overlap metrics: BLEU, sacreBLEU and chrF, backed by torchmetrics (ROUGE: rouge.py).

All scores are reported on a 0-1 scale (torchmetrics' convention), not sacrebleu's 0-100.
"""

from __future__ import annotations

from typing import Any

from torchmetrics.text import BLEUScore, CHRFScore, SacreBLEUScore

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


def chrf(
    n_char_order: int = 6, n_word_order: int = 0, beta: float = 2.0, **kwargs: Any
) -> TextMetric:
    """Corpus chrF (torchmetrics `CHRFScore`), reported as `{"chrf": ...}`.

    The default `n_word_order=0` is plain chrF, as sacrebleu's `CHRF()` default; torchmetrics
    defaults to chrF++ (`n_word_order=2`), which you can still ask for. It equals sacrebleu's
    `corpus_chrf` unless no text in the whole corpus has `n_char_order` characters: torchmetrics
    then still averages over the missing n-gram orders (identical one-word answers like "yes"
    score 0.5, not 1.0), so use exact_match or token_f1 for very short answers.
    """
    metric = CHRFScore(n_char_order=n_char_order, n_word_order=n_word_order, beta=beta, **kwargs)
    return TextMetric("chrf", metric)
