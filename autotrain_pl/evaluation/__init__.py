"""Evaluation: text metrics, evaluators and benchmarks.

Names are imported on first use, so ``import autotrain_pl.evaluation`` stays cheap (no torch,
no transformers) for code that only needs one part.
"""

from __future__ import annotations

from autotrain_pl.importing import lazy_exports

_EXPORTS = {
    "EvaluationConfig": "autotrain_pl.evaluation.config",
    "Evaluator": "autotrain_pl.evaluation.evaluator",
    "EvaluationResult": "autotrain_pl.evaluation.result",
    "BenchmarkRun": "autotrain_pl.evaluation.benchmarks",
    "LoglikelihoodScorer": "autotrain_pl.evaluation.benchmarks",
    "available_benchmarks": "autotrain_pl.evaluation.benchmarks",
    "get_benchmark": "autotrain_pl.evaluation.benchmarks",
    "run_benchmark": "autotrain_pl.evaluation.benchmarks",
    "GenerationScores": "autotrain_pl.evaluation.generation",
    "generate_and_score": "autotrain_pl.evaluation.generation",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
