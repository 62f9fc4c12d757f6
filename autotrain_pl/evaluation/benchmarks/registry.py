"""Benchmark names to definitions: ``get_benchmark("arc_challenge")``.

Names are matched case-insensitively, with ``-`` read as ``_``. A user's ``Benchmark`` subclass
is selected by import path (``my_pkg.evals.MyBenchmark``) or registered with
``@register_benchmark("name")``. ``BENCHMARKS`` is the ``autotrain_pl.registry.Registry`` behind
these functions.

Short names mean what the Open LLM Leaderboard (v1) reported under them: ``arc`` is
``arc_challenge`` and ``truthfulqa`` is ``truthfulqa_mc2``. ``LEADERBOARD`` records how the
leaderboard ran each benchmark (variant, k-shot, headline metric), so a caller can run it the
same way (the training-time benchmark callback does by default).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from autotrain_pl.evaluation.benchmarks.arc import ARCChallenge, ARCEasy
from autotrain_pl.evaluation.benchmarks.base import FEWSHOT_SEED, Benchmark
from autotrain_pl.evaluation.benchmarks.hellaswag import HellaSwag
from autotrain_pl.evaluation.benchmarks.mmlu import MMLU
from autotrain_pl.evaluation.benchmarks.truthfulqa import TruthfulQAMC1, TruthfulQAMC2
from autotrain_pl.registry import Registry

B = TypeVar("B", bound=type[Benchmark])
log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class LeaderboardTask:
    """How the Open LLM Leaderboard v1 ran a benchmark."""

    benchmark: str  #: registry name of the variant it scored
    title: str  #: the name it is known by (``ARC-Challenge``)
    num_fewshot: int
    metric: str  #: the headline metric (``acc_norm``)


_ARC = LeaderboardTask("arc_challenge", "ARC-Challenge", 25, "acc_norm")
_TRUTHFULQA = LeaderboardTask("truthfulqa_mc2", "TruthfulQA MC2", 0, "acc")
#: Lookup key -> the leaderboard's setting for it; the short names are aliases of the variant.
LEADERBOARD: dict[str, LeaderboardTask] = {
    "arc": _ARC, "arc_challenge": _ARC,
    "truthfulqa": _TRUTHFULQA, "truthfulqa_mc2": _TRUTHFULQA,
    "hellaswag": LeaderboardTask("hellaswag", "HellaSwag", 10, "acc_norm"),
    "mmlu": LeaderboardTask("mmlu", "MMLU", 5, "acc"),
}
#: Short names -> the registered variant they mean (as on the leaderboard).
ALIASES = {"arc": "arc_challenge", "truthfulqa": "truthfulqa_mc2"}
_REPORTED: set[str] = set()


def register_benchmark(name: str, *aliases: str) -> Callable[[B], B]:
    """Class decorator: make a ``Benchmark`` subclass selectable as ``benchmark=name`` (and as
    each alias)."""
    return BENCHMARKS.register(name, *aliases)


def available_benchmarks() -> list[str]:
    """Sorted names of the registered benchmarks."""
    return BENCHMARKS.names()


def leaderboard_task(name: str) -> LeaderboardTask | None:
    """The Open LLM Leaderboard v1 setting of ``name`` (a short name or a variant), if any."""
    return LEADERBOARD.get(_normalize(name)) if isinstance(name, str) else None


def get_benchmark(name: str, fewshot_seed: int = FEWSHOT_SEED) -> Benchmark:
    """A fresh benchmark (its few-shot random state starts at ``fewshot_seed``).

    A short name (``arc``, ``truthfulqa``) gives the variant in ``ALIASES``; its first use logs
    which one.
    """
    key = _normalize(name) if isinstance(name, str) else ""
    if key in ALIASES and key not in _REPORTED:
        _REPORTED.add(key)
        task = LEADERBOARD[key]
        log.info("benchmark %r means %s (%s, as on the Open LLM Leaderboard)", name,
                 task.benchmark, task.title)
    return BENCHMARKS.get(name)(fewshot_seed=fewshot_seed)


for _cls in (MMLU, HellaSwag, ARCEasy, ARCChallenge, TruthfulQAMC1, TruthfulQAMC2):
    _aliases = [alias for alias, target in ALIASES.items() if target == _cls.name]
    register_benchmark(_cls.name, *_aliases)(_cls)
