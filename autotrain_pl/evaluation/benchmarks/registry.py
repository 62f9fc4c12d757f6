"""Benchmark names to definitions: ``get_benchmark("arc_challenge")``."""

from __future__ import annotations

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.benchmarks.arc import ARCChallenge, ARCEasy
from autotrain_pl.evaluation.benchmarks.base import FEWSHOT_SEED, Benchmark
from autotrain_pl.evaluation.benchmarks.hellaswag import HellaSwag
from autotrain_pl.evaluation.benchmarks.mmlu import MMLU
from autotrain_pl.evaluation.benchmarks.truthfulqa import TruthfulQAMC1, TruthfulQAMC2

BENCHMARKS: dict[str, type[Benchmark]] = {
    cls.name: cls for cls in (MMLU, HellaSwag, ARCEasy, ARCChallenge, TruthfulQAMC1, TruthfulQAMC2)
}
#: Short names users type that are not unique; the error says which to pick.
_AMBIGUOUS = {
    "arc": ("arc_easy", "arc_challenge"),
    "truthfulqa": ("truthfulqa_mc1", "truthfulqa_mc2"),
}


def available_benchmarks() -> list[str]:
    return sorted(BENCHMARKS)


def get_benchmark(name: str, fewshot_seed: int = FEWSHOT_SEED) -> Benchmark:
    """A fresh benchmark (its few-shot random state starts at ``fewshot_seed``)."""
    key = str(name).strip().lower().replace("-", "_")
    if key in BENCHMARKS:
        return BENCHMARKS[key](fewshot_seed=fewshot_seed)
    if key in _AMBIGUOUS:
        raise AutotrainError(f"benchmark {name!r} is ambiguous; use {' or '.join(_AMBIGUOUS[key])}")
    raise AutotrainError(f"benchmark {name!r} is not known; use one of {available_benchmarks()}")
