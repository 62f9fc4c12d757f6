"""Registry of token-level objective losses, so that configs can say ``loss: kl``.

A registered loss is a callable ``(inputs: LossInputs, **params) -> Tensor`` returning the sum
over the given tokens divided by ``inputs.normalizer``: ``sum_i(w_i * loss_i) / normalizer``
(default 1: the sum; the objectives divide by the step's total units). ``get_loss`` resolves a
registered name, a dotted import path (``mypkg.losses.my_loss``, imported with
``autotrain_pl.importing.import_object``; never ``eval``) or a callable. ``LOSSES`` is the
``autotrain_pl.registry.Registry`` behind it; ``loss_needs`` says which optional ``LossInputs``
groups a loss reads.

Only token-level losses live here. The pair-level losses (``dpo_loss``, ``cpo_loss``,
``orpo_loss``, ``kto_loss``, ``bradley_terry_loss``) take per-pair tensors rather than
``LossInputs``; the preference and reward objectives call them directly, and ``get_loss("dpo")``
raises an error that points there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses._reduction import Normalizer
from autotrain_pl.losses.cross_entropy import entropy_loss, focal_loss, weighted_cross_entropy
from autotrain_pl.losses.divergence import generalized_jsd, kd_loss_topk
from autotrain_pl.losses.logprobs import token_logprobs
from autotrain_pl.losses.policy_gradient import (
    importance_sampling_loss,
    ppo_clip_loss,
    ref_kl_penalty,
)
from autotrain_pl.registry import Registry


@dataclass
class LossInputs:
    """Everything a token-level loss may read, in the flat layout of trained positions.

    Attributes:
        logits: ``[N, V]`` student/policy logits at the trained positions.
        labels: ``[N]`` next-token ids (already shifted).
        loss_weights: ``[N]`` float weights; 0 = not trained.
        normalizer: What the weighted sum is divided by. Default 1: the loss returns the SUM
            over these tokens, which is what the objectives and ``TrainingClient`` pass (the step
            then divides by the loss units of the whole optimizer step). A number or 0-d tensor:
            e.g. the step's total weight. ``None``: this batch's own ``loss_weights.sum()``
            (the weighted mean; right only when the batch is the whole step).
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
    normalizer: Normalizer | None = 1.0
    teacher_logits: Tensor | None = None
    teacher_topk_values: Tensor | None = None
    teacher_topk_indices: Tensor | None = None
    old_logprobs: Tensor | None = None
    ref_logprobs: Tensor | None = None
    advantages: Tensor | float | None = None


class TokenLoss(Protocol):
    """A registered loss: ``(inputs, **params) -> scalar Tensor``."""

    def __call__(self, inputs: LossInputs, /, **params: Any) -> Tensor: ...


LOSS_INPUT_GROUPS: dict[str, tuple[str, ...]] = {
    "teacher": ("teacher_logits", "teacher_topk_values", "teacher_topk_indices"),
    "advantages": ("advantages",),
    "old_logprobs": ("old_logprobs",),
    "reference": ("ref_logprobs",),
}
"""The optional ``LossInputs`` groups a loss may need (``register_loss(needs=...)``), and their
fields. ``logits``, ``labels``, ``loss_weights`` and ``normalizer`` are always there."""

LOSSES: Registry[Callable[..., Tensor]] = Registry(
    kind="loss",
    field="loss",
    example="mypkg.losses.my_loss",
    accepts=callable,
    expects="callable; point it at a loss function",
)

_NEEDS: dict[Callable[..., Tensor], frozenset[str]] = {}

_PAIR_LEVEL = {
    "dpo": "autotrain_pl.losses.dpo_loss (losses/dpo.py; its loss_type picks the DPO variant)",
    "cpo": "autotrain_pl.losses.cpo_loss (losses/reference_free.py)",
    "simpo": "autotrain_pl.losses.cpo_loss with loss_type='simpo' (losses/reference_free.py)",
    "orpo": "autotrain_pl.losses.orpo_loss (losses/reference_free.py)",
    "kto": "autotrain_pl.losses.kto_loss (losses/kto.py)",
    "bradley_terry": "autotrain_pl.losses.bradley_terry_loss (losses/reward.py)",
}


def register_loss(
    name: str, *aliases: str, needs: tuple[str, ...] = ()
) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Decorator that registers a ``(inputs: LossInputs, **params) -> Tensor`` under names.

    Args:
        name: The name configs use; ``aliases`` are further names for the same loss.
        needs: The optional ``LossInputs`` groups the loss reads (keys of
            ``LOSS_INPUT_GROUPS``: ``teacher``, ``advantages``, ``old_logprobs``, ``reference``),
            so an objective can reject a term it cannot feed before training starts.

    Example::

        @register_loss("my_kd", needs=("teacher",))
        def my_kd(inputs: LossInputs, *, scale: float = 1.0) -> Tensor: ...
    """
    unknown = sorted(set(needs) - set(LOSS_INPUT_GROUPS))
    if isinstance(needs, str) or unknown:
        raise AutotrainError(
            f"register_loss({name!r}): needs={needs!r} must be a tuple of "
            f"{', '.join(LOSS_INPUT_GROUPS)}"
        )
    register = LOSSES.register(name, *aliases)

    def decorator(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        register(fn)
        _NEEDS[fn] = frozenset(needs)
        return fn

    return decorator


def available_losses() -> list[str]:
    """Sorted names (aliases included) that ``get_loss`` accepts."""
    return LOSSES.names()


def get_loss(loss: str | Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Resolve a loss given as a registered name, a dotted import path, or a callable.

    Raises:
        AutotrainError: for an unknown name (the message lists the known ones), a pair-level loss
            name, or an import path that does not lead to a callable.
    """
    if callable(loss):
        return loss
    if isinstance(loss, str) and loss.strip() in _PAIR_LEVEL and loss not in LOSSES:
        raise AutotrainError(
            f"loss {loss!r} is pair-level and takes no LossInputs; "
            f"call {_PAIR_LEVEL[loss.strip()]}."
        )
    return LOSSES.get(loss)


def loss_needs(loss: str | Callable[..., Tensor]) -> frozenset[str]:
    """The ``LossInputs`` groups a loss declared with ``register_loss(needs=...)``.

    Losses registered without ``needs``, and callables that were never registered, need none.
    """
    fn = get_loss(loss)
    try:
        return _NEEDS.get(fn, frozenset())
    except TypeError:  # an unhashable callable object was never registered
        return frozenset()


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


@register_loss("kl", "forward_kl", needs=("teacher",))
def kl(inputs: LossInputs, *, temperature: float = 1.0) -> Tensor:
    """Forward ``KL(teacher || student)``, full-vocabulary or top-k teacher; no ``T**2`` factor."""
    return _teacher_divergence(inputs, "kl", "forward_kl", 0.0, temperature)


@register_loss("reverse_kl", needs=("teacher",))
def reverse_kl_loss(inputs: LossInputs, *, temperature: float = 1.0) -> Tensor:
    """Reverse ``KL(student || teacher)``, full-vocabulary or top-k teacher; no ``T**2`` factor."""
    return _teacher_divergence(inputs, "reverse_kl", "reverse_kl", 1.0, temperature)


@register_loss("jsd", needs=("teacher",))
def jsd(inputs: LossInputs, *, beta: float = 0.5, temperature: float = 1.0) -> Tensor:
    """Generalized JSD (TRL's GKD convention: beta=0 forward KL, beta=1 reverse KL)."""
    return _teacher_divergence(inputs, "jsd", "jsd", beta, temperature)


@register_loss("importance_sampling", needs=("advantages",))
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


@register_loss("ppo", needs=("old_logprobs", "advantages"))
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


@register_loss("ref_kl", needs=("reference",))
def ref_kl(inputs: LossInputs, *, temperature: float = 1.0) -> Tensor:
    """k3 KL-to-reference penalty at the sampled tokens (GRPO's beta term)."""
    _require(inputs, "ref_kl", "ref_logprobs")
    return ref_kl_penalty(
        _policy_logprobs(inputs, temperature),
        inputs.ref_logprobs,  # type: ignore[arg-type]
        inputs.loss_weights,
        normalizer=inputs.normalizer,
    )
