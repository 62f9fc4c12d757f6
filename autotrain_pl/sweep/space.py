"""Search spaces: one ``ParameterRange`` per swept key, parsed from YAML, JSON or Python.

Accepted shapes for one key (the seed's ``sweep_params`` JSON included)::

    {type: float, low: 1e-4, high: 1e-2, log: true}     # also: uniform, log_uniform, loguniform
    {type: int, low: 8, high: 64, step: 8}              # also: int_uniform
    {type: categorical, choices: [8, 16, 32]}           # ``values`` is accepted for ``choices``
    [8, 16, 32]                                         # a plain list: categorical
    [1e-4, 1e-2, log_uniform]                           # low, high, distribution
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autotrain_pl.errors import AutotrainError

#: distribution name -> (kind, log)
DISTRIBUTIONS: dict[str, tuple[str, bool]] = {
    "float": ("float", False), "uniform": ("float", False),
    "log_uniform": ("float", True), "loguniform": ("float", True), "log": ("float", True),
    "int": ("int", False), "int_uniform": ("int", False), "int_log_uniform": ("int", True),
    "categorical": ("categorical", False), "choice": ("categorical", False),
}


@dataclass(frozen=True)
class ParameterRange:
    """The values one swept key may take.

    Args:
        name: the key it sets (a dotted fit-config key such as ``model.init_args.learning_rate``,
            or any name for a Python objective).
        distribution: one of ``DISTRIBUTIONS`` (``float``, ``log_uniform``, ``int``,
            ``categorical``...).
        low, high: the inclusive bounds of a numeric range.
        step: a grid step for numeric ranges (also what the grid sampler enumerates).
        choices: the values of a categorical parameter.
        log: sample on a log scale (implied by ``log_uniform``).
    """

    name: str
    distribution: str = "float"
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] | None = None
    log: bool = False

    def __post_init__(self) -> None:
        where = f"search space key {self.name!r}"
        if self.distribution not in DISTRIBUTIONS:
            raise AutotrainError(f"{where}: unknown type {self.distribution!r}; use one of: "
                                 f"{', '.join(DISTRIBUTIONS)}")
        kind, log = DISTRIBUTIONS[self.distribution]
        object.__setattr__(self, "log", self.log or log)
        if kind == "categorical":
            if not self.choices:
                raise AutotrainError(f"{where}: a categorical range needs a non-empty 'choices' "
                                     "list, e.g. choices: [8, 16, 32]")
            object.__setattr__(self, "choices", tuple(self.choices))
            return
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise AutotrainError(f"{where}: '{bound}' must be a number, got {value!r}")
        if self.low > self.high:
            raise AutotrainError(f"{where}: low={self.low:g} is above high={self.high:g}; "
                                 "swap them")
        if self.log and self.low <= 0:
            raise AutotrainError(f"{where}: a log range must stay above 0, got low="
                                 f"{self.low:g}; raise low or drop log")
        if self.step is not None and not self.step > 0:
            raise AutotrainError(f"{where}: step must be > 0, got {self.step!r}")
        if self.log and self.step is not None:
            raise AutotrainError(f"{where}: a log range takes no step (optuna samples it on a "
                                 "continuous log scale); drop one of them")

    @property
    def kind(self) -> str:
        return DISTRIBUTIONS[self.distribution][0]

    def suggest(self, trial) -> Any:
        """This parameter's value for an optuna trial."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), step=self.step,
                                   log=self.log)

    def grid_values(self) -> list[Any]:
        """Every value the grid sampler visits: the choices, or the range at its step."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int" and self.step is None and not self.log:
            return list(range(int(self.low), int(self.high) + 1))
        if self.step is None:
            raise AutotrainError(f"search space key {self.name!r}: the grid sampler needs a step "
                                 "or choices for a continuous range, e.g. step: 0.001 or "
                                 "type: categorical")
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        values = [self.low + i * self.step for i in range(count)]
        return [int(v) for v in values] if self.kind == "int" else [round(v, 12) for v in values]

    def sample_value(self) -> Any:
        """A value inside the range, to check that the key and its type fit the config."""
        if self.kind == "categorical":
            return self.choices[0]
        return int(self.low) if self.kind == "int" else float(self.low)


def parse_range(name: str, spec: Any) -> ParameterRange:
    """One key's range from the shapes in the module docstring."""
    if isinstance(spec, ParameterRange):
        return spec
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        spec = list(spec)
        if (len(spec) == 3 and isinstance(spec[2], str) and spec[2] in DISTRIBUTIONS
                and all(isinstance(v, int | float) for v in spec[:2])):
            return ParameterRange(name, spec[2], low=spec[0], high=spec[1])
        return ParameterRange(name, "categorical", choices=tuple(spec))
    if not isinstance(spec, Mapping):
        raise AutotrainError(f"search space key {name!r}: give a range such as {{type: float, "
                             f"low: 1e-4, high: 1e-2, log: true}} or a list of choices, got "
                             f"{spec!r}")
    spec = dict(spec)
    distribution = spec.pop("type", None) or spec.pop("distribution", None)
    choices = spec.pop("choices", None) or spec.pop("values", None)
    if distribution is None:
        distribution = "categorical" if choices is not None else "float"
    unknown = set(spec) - {"low", "high", "step", "log"}
    if unknown:
        raise AutotrainError(f"search space key {name!r}: unknown field(s) "
                             f"{', '.join(sorted(unknown))}; use type, low, high, step, log, "
                             "choices")
    return ParameterRange(name, str(distribution), low=spec.get("low"), high=spec.get("high"),
                          step=spec.get("step"), log=bool(spec.get("log", False)),
                          choices=tuple(choices) if choices is not None else None)


def parse_space(space: Mapping[str, Any] | Sequence[ParameterRange] | None,
                field: str = "search_space") -> list[ParameterRange]:
    """The ranges of a whole search space (a mapping of key to range, or ranges)."""
    if not space:
        raise AutotrainError(f"{field} is empty: name at least one key to sweep, e.g. "
                             "model.init_args.learning_rate: {type: float, low: 1e-4, "
                             "high: 1e-2, log: true}")
    if isinstance(space, Mapping):
        return [parse_range(str(name), spec) for name, spec in space.items()]
    ranges = list(space)
    if not all(isinstance(r, ParameterRange) for r in ranges):
        raise AutotrainError(f"{field}: give a mapping of key to range, or ParameterRange objects")
    return ranges


def grid_size(ranges: Sequence[ParameterRange]) -> int:
    return math.prod(len(r.grid_values()) for r in ranges)

