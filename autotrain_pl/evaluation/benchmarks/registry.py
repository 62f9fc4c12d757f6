"""Benchmark names to definitions: ``get_benchmark("arc_challenge")``.

Names are matched case-insensitively, with ``-`` read as ``_``. A user's ``Benchmark`` subclass
is selected by import path (``my_pkg.evals.MyBenchmark``) or registered with
``@register_benchmark("name")``. ``BENCHMARKS`` is the ``autotrain_pl.registry.Registry`` behind
these functions.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.benchmarks.arc import ARCChallenge, ARCEasy
from autotrain_pl.evaluation.benchmarks.base import FEWSHOT_SEED, Benchmark
from autotrain_pl.evaluation.benchmarks.hellaswag import HellaSwag
from autotrain_pl.evaluation.benchmarks.mmlu import MMLU
from autotrain_pl.evaluation.benchmarks.truthfulqa import TruthfulQAMC1, TruthfulQAMC2
from autotrain_pl.registry import Registry

B = TypeVar("B", bound=type[Benchmark])


def _normalize(name: str) -> str:
    return name.strip().lower().replace("-", "_")


BENCHMARKS: Registry[type[Benchmark]] = Registry(
    kind="benchmark",
    field="benchmark",
    normalize=_normalize,
    example="my_pkg.evals.MyBenchmark",
    accepts=lambda obj: inspect.isclass(obj) and issubclass(obj, Benchmark),
    expects="a Benchmark subclass (autotrain_pl.evaluation.benchmarks.Benchmark)",
)
#: Short names users type that are not unique; the error says which to pick.
_AMBIGUOUS = {
    "arc": ("arc_easy", "arc_challenge"),
    "truthfulqa": ("truthfulqa_mc1", "truthfulqa_mc2"),
}


def register_benchmark(name: str) -> Callable[[B], B]:
    """Class decorator: make a ``Benchmark`` subclass selectable as ``benchmark=name``."""
    return BENCHMARKS.register(name)


def available_benchmarks() -> list[str]:
    """Sorted names of the registered benchmarks."""
    return BENCHMARKS.names()


def get_benchmark(name: str, fewshot_seed: int = FEWSHOT_SEED) -> Benchmark:
    """A fresh benchmark (its few-shot random state starts at ``fewshot_seed``)."""
    key = _normalize(name) if isinstance(name, str) else ""
    if key in _AMBIGUOUS and key not in BENCHMARKS:
        raise AutotrainError(f"benchmark {name!r} is ambiguous; use {' or '.join(_AMBIGUOUS[key])}")
    return BENCHMARKS.get(name)(fewshot_seed=fewshot_seed)


for _cls in (MMLU, HellaSwag, ARCEasy, ARCChallenge, TruthfulQAMC1, TruthfulQAMC2):
    register_benchmark(_cls.name)(_cls)
