"""Registry of token-level objective losses, so that configs can say ``loss: kl``.

A registered loss is a callable ``(inputs: LossInputs, **params) -> Tensor`` returning the reduced
scalar ``sum_i(w_i * loss_i) / inputs.normalizer``. ``get_loss`` resolves a registered name, a
dotted import path (``mypkg.losses.my_loss``, imported with ``importlib``; never ``eval``) or a
callable.

Only token-level losses live here. The pair-level losses, ``dpo_loss`` and ``bradley_terry_loss``,
take per-pair tensors rather than ``LossInputs``; the DPO and reward objectives call them directly,
and ``get_loss("dpo")`` raises an error that points there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.importing import import_object
from autotrain_pl.losses._reduction import Normalizer
from autotrain_pl.losses.cross_entropy import entropy_loss, focal_loss, weighted_cross_entropy
from autotrain_pl.losses.divergence import generalized_jsd, kd_loss_topk
from autotrain_pl.losses.logprobs import token_logprobs
from autotrain_pl.losses.policy_gradient import (
    importance_sampling_loss,
    ppo_clip_loss,
    ref_kl_penalty,
)


@dataclass
class LossInputs:
    """Everything a token-level loss may read, in the flat layout of trained positions.

    Attributes:
        logits: ``[N, V]`` student/policy logits at the trained positions.
        labels: ``[N]`` next-token ids (already shifted).
        loss_weights: ``[N]`` float weights; 0 = not trained.
        normalizer: Total loss weight of the optimizer step (all micro-batches and ranks);
            ``None`` = ``loss_weights.sum()`` (the batch is the whole step).
        teacher_logits: ``[N, V]`` teacher logits, for distillation losses.
        teacher_topk_values: ``[N, k]`` teacher top-k logits or log-probs (cached teachers).
        teacher_topk_indices: ``[N, k]`` token ids of ``teacher_topk_values``.
        old_logprobs: ``[N]`` log-probs of the sampling policy, for PPO/IS.
        ref_logprobs: ``[N]`` log-probs of the frozen reference, for ``ref_kl``.
        advantages: ``[N]`` per-token advantages (or anything broadcastable to ``[N]``).
    """

    logits: Tensor
    labels: Tensor
    loss_weights: Tensor
    normalizer: Normalizer | None = None
    teacher_logits: Tensor | None = None
    teacher_topk_values: Tensor | None = None
    teacher_topk_indices: Tensor | None = None
    old_logprobs: Tensor | None = None
    ref_logprobs: Tensor | None = None
    advantages: Tensor | float | None = None


class TokenLoss(Protocol):
    """A registered loss: ``(inputs, **params) -> scalar Tensor``."""

    def __call__(self, inputs: LossInputs, /, **params: Any) -> Tensor: ...


_REGISTRY: dict[str, Callable[..., Tensor]] = {}

_PAIR_LEVEL = {
    "dpo": "autotrain_pl.losses.dpo_loss (used by the DPO objective)",
    "bradley_terry": "autotrain_pl.losses.bradley_terry_loss (used by the reward objective)",
}


def register_loss(
    name: str, *aliases: str
) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Decorator that registers a ``(inputs: LossInputs, **params) -> Tensor`` under names.

    Example::

        @register_loss("my_ce")
        def my_ce(inputs: LossInputs, *, scale: float = 1.0) -> Tensor: ...
    """
    names = (name, *aliases)

    def decorator(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        for key in names:
            if key in _REGISTRY and _REGISTRY[key] is not fn:
                raise AutotrainError(
                    f"loss name {key!r} is already registered; choose another name."
                )
        for key in names:
            _REGISTRY[key] = fn
        return fn

    return decorator


def available_losses() -> list[str]:
    """Sorted names (aliases included) that ``get_loss`` accepts."""
    return sorted(_REGISTRY)


def _import_path(path: str) -> Callable[..., Tensor]:
    fn = import_object(path, "loss")
    if not callable(fn):
        raise AutotrainError(f"loss={path!r} is not callable; point it at a loss function")
    return fn


def get_loss(loss: str | Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Resolve a loss given as a registered name, a dotted import path, or a callable.

    Raises:
        AutotrainError: for an unknown name (the message lists the known ones), a pair-level loss
            name, or an import path that does not lead to a callable.
    """
    if callable(loss):
        return loss
    if not isinstance(loss, str) or not loss:
        raise AutotrainError(f"loss={loss!r} must be a loss name, an import path or a callable.")
    if loss in _REGISTRY:
        return _REGISTRY[loss]
    if loss in _PAIR_LEVEL:
        raise AutotrainError(
            f"loss {loss!r} is pair-level and takes no LossInputs; call {_PAIR_LEVEL[loss]}."
        )
    if "." in loss:
        return _import_path(loss)
    raise AutotrainError(
        f"unknown loss {loss!r}; use one of {', '.join(available_losses())} or an import path "
        "like 'mypkg.losses.my_loss'."
    )


def _require(inputs: LossInputs, loss: str, *fields: str) -> None:
    missing = [field for field in fields if getattr(inputs, field) is None]
    if missing:
        raise AutotrainError(
            f"loss {loss!r} needs LossInputs.{', '.join(missing)}; use it with an objective "
            "that provides them or remove the term."
        )


def _policy_logprobs(inputs: LossInputs, temperature: float) -> Tensor:
    return token_logprobs(inputs.logits, inputs.labels, temperature=temperature)


def _teacher_divergence(
    inputs: LossInputs, loss: str, kind: str, beta: float, temperature: float
) -> Tensor:
    if inputs.teacher_logits is not None:
        beta = {"forward_kl": 0.0, "reverse_kl": 1.0}.get(kind, beta)
        return generalized_jsd(
            inputs.logits,
            inputs.teacher_logits,
            inputs.loss_weights,
            beta=beta,
            temperature=temperature,
            normalizer=inputs.normalizer,
        )
    if inputs.teacher_topk_values is not None and inputs.teacher_topk_indices is not None:
        return kd_loss_topk(
            inputs.logits,
            inputs.teacher_topk_values,
            inputs.teacher_topk_indices,
            inputs.loss_weights,
            kind=kind,
            beta=beta,
            temperature=temperature,
            normalizer=inputs.normalizer,
        )
    raise AutotrainError(
        f"loss {loss!r} needs LossInputs.teacher_logits or teacher_topk_values + "
        "teacher_topk_indices; configure a teacher (distillation objective) or remove the term."
    )


@register_loss("ce", "cross_entropy")
def ce(inputs: LossInputs, *, label_smoothing: float = 0.0, ignore_index: int = -100) -> Tensor:
    """Weighted cross-entropy (``weighted_cross_entropy``)."""
    return weighted_cross_entropy(
        inputs.logits,
        inputs.labels,
        inputs.loss_weights,
        normalizer=inputs.normalizer,
        label_smoothing=label_smoothing,
        ignore_index=ignore_index,
    )


@register_loss("focal")
def focal(inputs: LossInputs, *, gamma: float = 2.0) -> Tensor:
    """Weighted focal loss (``focal_loss``)."""
    return focal_loss(
        inputs.logits, inputs.labels, inputs.loss_weights, gamma=gamma, normalizer=inputs.normalizer
    )


@register_loss("entropy")
def entropy(inputs: LossInputs) -> Tensor:
    """Weighted mean entropy (``entropy_loss``); give it a negative weight to encourage entropy."""
    return entropy_loss(inputs.logits, inputs.loss_weights, normalizer=inputs.normalizer)


@register_loss("kl", "forward_kl")
def kl(inputs: LossInputs, *, temperature: float = 1.0) -> Tensor:
    """Forward ``KL(teacher || student)``, full-vocabulary or top-k teacher; no ``T**2`` factor."""
    return _teacher_divergence(inputs, "kl", "forward_kl", 0.0, temperature)


@register_loss("reverse_kl")
def reverse_kl_loss(inputs: LossInputs, *, temperature: float = 1.0) -> Tensor:
    """Reverse ``KL(student || teacher)``, full-vocabulary or top-k teacher; no ``T**2`` factor."""
    return _teacher_divergence(inputs, "reverse_kl", "reverse_kl", 1.0, temperature)


@register_loss("jsd")
def jsd(inputs: LossInputs, *, beta: float = 0.5, temperature: float = 1.0) -> Tensor:
    """Generalized JSD (TRL's GKD convention: beta=0 forward KL, beta=1 reverse KL)."""
    return _teacher_divergence(inputs, "jsd", "jsd", beta, temperature)


@register_loss("importance_sampling")
def importance_sampling(inputs: LossInputs, *, temperature: float = 1.0) -> Tensor:
    """Importance-sampled policy gradient; ``old_logprobs=None`` means on-policy REINFORCE."""
    _require(inputs, "importance_sampling", "advantages")
    return importance_sampling_loss(
        _policy_logprobs(inputs, temperature),
        inputs.old_logprobs,
        inputs.advantages,  # type: ignore[arg-type]
        inputs.loss_weights,
        normalizer=inputs.normalizer,
    )


@register_loss("ppo")
def ppo(
    inputs: LossInputs,
    *,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    temperature: float = 1.0,
) -> Tensor:
    """PPO clipped surrogate; call ``ppo_clip_loss`` directly for its clip metrics."""
    _require(inputs, "ppo", "old_logprobs", "advantages")
    loss, _ = ppo_clip_loss(
        _policy_logprobs(inputs, temperature),
        inputs.old_logprobs,
        inputs.advantages,  # type: ignore[arg-type]
        inputs.loss_weights,
        clip_eps=clip_eps,
        clip_eps_high=clip_eps_high,
        normalizer=inputs.normalizer,
    )
    return loss


@register_loss("ref_kl")
def ref_kl(inputs: LossInputs, *, temperature: float = 1.0) -> Tensor:
    """k3 KL-to-reference penalty at the sampled tokens (GRPO's beta term)."""
    _require(inputs, "ref_kl", "ref_logprobs")
    return ref_kl_penalty(
        _policy_logprobs(inputs, temperature),
        inputs.ref_logprobs,  # type: ignore[arg-type]
        inputs.loss_weights,
        normalizer=inputs.normalizer,
    )
