"""Evaluation: text metrics, evaluators and benchmarks.

Names are imported on first use, so ``import autotrain_pl.evaluation`` stays cheap (no torch,
no transformers) for code that only needs one part.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvaluationConfig": "autotrain_pl.evaluation.evaluator",
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


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
