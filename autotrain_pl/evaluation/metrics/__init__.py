"""Text and token metrics for evaluation, torchmetrics-backed so they are correct under DDP."""

from autotrain_pl.evaluation.metrics.answer import (
    ExactMatch,
    TokenF1,
    exact_match_score,
    normalize_answer,
    token_f1_score,
)
from autotrain_pl.evaluation.metrics.base import MeanScore, MetricKind, TextMetric
from autotrain_pl.evaluation.metrics.bertscore import BERTScoreMetric
from autotrain_pl.evaluation.metrics.chrf import ChrF
from autotrain_pl.evaluation.metrics.classification import LabelMetric
from autotrain_pl.evaluation.metrics.meteor import Meteor, meteor_tokenize, sentence_meteor
from autotrain_pl.evaluation.metrics.perplexity import WeightedPerplexity
from autotrain_pl.evaluation.metrics.registry import (
    EvalMetric,
    available_metrics,
    build_metric_collection,
    check_metrics,
    get_metric,
    register_metric,
)
from autotrain_pl.evaluation.metrics.rouge import Rouge, RougeSet, split_sentences_on_newlines

__all__ = [
    "BERTScoreMetric",
    "ChrF",
    "EvalMetric",
    "ExactMatch",
    "LabelMetric",
    "MeanScore",
    "Meteor",
    "MetricKind",
    "Rouge",
    "RougeSet",
    "TextMetric",
    "TokenF1",
    "WeightedPerplexity",
    "available_metrics",
    "build_metric_collection",
    "check_metrics",
    "exact_match_score",
    "get_metric",
    "meteor_tokenize",
    "normalize_answer",
    "register_metric",
    "sentence_meteor",
    "split_sentences_on_newlines",
    "token_f1_score",
]
