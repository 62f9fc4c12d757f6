"""A weighted sum of registered token-level losses, configured from YAML.

Example (as a plain dict, which is what jsonargparse hands over)::

    loss = CompositeLoss(
        {"ce": 1.0, "kl": 0.1, "entropy": -0.01}, params={"kl": {"temperature": 2.0}}
    )
    total, metrics = loss(inputs)   # metrics == {"ce": ..., "kl": ..., "entropy": ...}

or as a list, which also allows one loss twice under different names::

    CompositeLoss([{"name": "kl", "weight": 0.5, "params": {"temperature": 1.0}, "label": "kl_t1"},
                   {"name": "kl", "weight": 0.5, "params": {"temperature": 4.0}, "label": "kl_t4"}])
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses.registry import LOSS_INPUT_GROUPS, LossInputs, get_loss, loss_needs

_TERM_KEYS = {"name", "weight", "params", "label"}


@dataclass(frozen=True)
class LossTerm:
    """One resolved term: ``weight * fn(inputs, **params)``, logged as ``label``.

    ``needs`` are the optional ``LossInputs`` groups the loss reads (see ``register_loss``).
    """

    label: str
    name: str
    weight: float
    fn: Callable[..., Tensor]
    params: dict[str, Any] = field(default_factory=dict)
    needs: frozenset[str] = frozenset()


def _check_weight(label: str, weight: Any) -> float:
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
        raise AutotrainError(f"loss term {label!r}: weight={weight!r} must be a finite number.")
    return float(weight)


def _check_params(label: str, fn: Callable[..., Tensor], params: Any) -> dict[str, Any]:
    if not isinstance(params, Mapping):
        raise AutotrainError(
            f"loss term {label!r}: params={params!r} must be a mapping of keywords."
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return dict(params)
    accepted = list(signature.parameters.values())[1:]  # the first parameter is `inputs`
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted):
        return dict(params)
    known = {p.name for p in accepted if p.kind is not inspect.Parameter.VAR_POSITIONAL}
    unknown = sorted(set(params) - known)
    if unknown:
        raise AutotrainError(
            f"loss term {label!r}: unknown params {unknown}; it accepts {sorted(known) or 'none'}."
        )
    return dict(params)


def _terms_from_dict(terms: Mapping[str, Any], params: Mapping[str, Any]) -> list[LossTerm]:
    unknown = sorted(set(params) - set(terms))
    if unknown:
        raise AutotrainError(
            f"params given for {unknown}, which are not terms; terms are {sorted(terms)}."
        )
    resolved = []
    for name, weight in terms.items():
        fn = get_loss(name)
        resolved.append(
            LossTerm(
                name,
                name,
                _check_weight(name, weight),
                fn,
                _check_params(name, fn, params.get(name, {})),
                loss_needs(fn),
            )
        )
    return resolved


def _terms_from_list(terms: Sequence[Any]) -> list[LossTerm]:
    resolved = []
    for position, item in enumerate(terms):
        if not isinstance(item, Mapping) or "name" not in item:
            raise AutotrainError(
                f"loss term #{position}={item!r} must be a mapping with a 'name' key, e.g. "
                "{'name': 'kl', 'weight': 0.1, 'params': {'temperature': 2.0}}."
            )
        extra = sorted(set(item) - _TERM_KEYS)
        if extra:
            raise AutotrainError(
                f"loss term #{position}: unknown keys {extra}; allowed are {sorted(_TERM_KEYS)}."
            )
        name = item["name"]
        label = str(item.get("label", name))
        fn = get_loss(name)
        weight = _check_weight(label, item.get("weight", 1.0))
        term_params = _check_params(label, fn, item.get("params", {}))
        resolved.append(LossTerm(label, str(name), weight, fn, term_params, loss_needs(fn)))
    return resolved


class CompositeLoss:
    """Weighted sum of registered losses: ``total = sum_t weight_t * loss_t(inputs, **params_t)``.

    Every term shares the same ``LossInputs`` (and so the same step normalizer), so the total is
    still exact under gradient accumulation. Names, weights and params are validated at
    construction. ``needs`` and ``terms_needing`` tell which terms read optional inputs (a
    teacher, advantages, ...), so an objective can reject a term it cannot feed when it is built;
    otherwise a term whose inputs are missing fails clearly at call time. A term with weight 0 is
    computed without gradient, for logging only.

    Args:
        terms: ``{name: weight}``, or a list of ``{"name", "weight", "params", "label"}`` mappings.
            A name is a registered loss name or an import path.
        params: Keyword parameters per term name, for the dict form only.
    """

    def __init__(
        self,
        terms: dict[str, float] | list[dict[str, Any]],
        params: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        if isinstance(terms, Mapping):
            self.terms = _terms_from_dict(terms, params or {})
        elif isinstance(terms, Sequence) and not isinstance(terms, str):
            if params:
                raise AutotrainError(
                    "params= is only for the dict form of terms; put 'params' in each list item."
                )
            self.terms = _terms_from_list(terms)
        else:
            raise AutotrainError(
                f"terms={terms!r} must be a mapping like {{'ce': 1.0, 'kl': 0.1}} or a list."
            )
        if not self.terms:
            raise AutotrainError("terms is empty; give at least one loss, e.g. {'ce': 1.0}.")
        labels = [term.label for term in self.terms]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise AutotrainError(
                f"loss terms {duplicates} appear twice; give each a distinct 'label'."
            )

    @property
    def needs(self) -> frozenset[str]:
        """The optional ``LossInputs`` groups any term reads: ``teacher``, ``advantages``,
        ``old_logprobs``, ``reference`` (see ``LOSS_INPUT_GROUPS``). Callables and import paths
        that were never registered with ``register_loss(needs=...)`` add nothing."""
        return frozenset().union(*(term.needs for term in self.terms))

    def terms_needing(self, needs: Iterable[str]) -> list[str]:
        """Labels of the terms that read any of the groups ``needs``, in term order.

        Example: an objective without a teacher calls ``loss.terms_needing({"teacher"})`` and
        rejects the config if the list is not empty.
        """
        wanted = {needs} if isinstance(needs, str) else set(needs)
        unknown = sorted(wanted - set(LOSS_INPUT_GROUPS))
        if unknown:
            raise ValueError(f"unknown LossInputs groups {unknown}; use {list(LOSS_INPUT_GROUPS)}")
        return [term.label for term in self.terms if term.needs & wanted]

    def __call__(self, inputs: LossInputs) -> tuple[Tensor, dict[str, Tensor]]:
        """Return ``(total, {label: unweighted term value, detached})``."""
        total: Tensor | None = None
        metrics: dict[str, Tensor] = {}
        for term in self.terms:
            if term.weight == 0.0:
                with torch.no_grad():
                    value = term.fn(inputs, **term.params)
                metrics[term.label] = value.detach()
                continue
            value = term.fn(inputs, **term.params)
            metrics[term.label] = value.detach()
            total = term.weight * value if total is None else total + term.weight * value
        if total is None:  # every weight is 0: a zero loss that still connects to the logits
            total = inputs.logits.sum() * 0.0
        return total, metrics

    def __repr__(self) -> str:
        body = ", ".join(f"{term.label}={term.weight:g}" for term in self.terms)
        return f"CompositeLoss({body})"
