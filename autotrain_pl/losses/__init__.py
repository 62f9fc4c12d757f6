"""Pure loss functions and the token-level loss registry (see DESIGN.md, section 3)."""

from autotrain_pl.losses.composite import CompositeLoss
from autotrain_pl.losses.cross_entropy import (
    entropy_loss,
    focal_loss,
    per_token_cross_entropy,
    per_token_focal_loss,
    weighted_cross_entropy,
)
from autotrain_pl.losses.divergence import (
    forward_kl,
    generalized_jsd,
    kd_loss_topk,
    per_token_forward_kl,
    per_token_generalized_jsd,
    per_token_kd_topk,
    per_token_reverse_kl,
    reverse_kl,
)
from autotrain_pl.losses.dpo import (
    DPO_LOSS_TYPES,
    F_DIVERGENCE_LOSS_TYPES,
    F_DIVERGENCE_TYPES,
    LABEL_SMOOTHING_LOSS_TYPES,
    check_dpo_settings,
    chosen_token_nll_per_pair,
    dpo_loss,
)
from autotrain_pl.losses.kto import KTO_LOSS_TYPES, check_kto_settings, kto_loss
from autotrain_pl.losses.logprobs import entropy_from_logits, selective_log_softmax, token_logprobs
from autotrain_pl.losses.policy_gradient import (
    importance_sampling_loss,
    per_token_importance_sampling_loss,
    per_token_ppo_clip_loss,
    per_token_ref_kl,
    ppo_clip_loss,
    ref_kl_penalty,
)
from autotrain_pl.losses.reference_free import (
    CPO_LOSS_TYPES,
    check_reference_free_settings,
    cpo_loss,
    orpo_loss,
)
from autotrain_pl.losses.registry import (
    LOSS_INPUT_GROUPS,
    LossInputs,
    available_losses,
    get_loss,
    loss_needs,
    register_loss,
)
from autotrain_pl.losses.reward import bradley_terry_loss

__all__ = [
    "CPO_LOSS_TYPES",
    "DPO_LOSS_TYPES",
    "F_DIVERGENCE_LOSS_TYPES",
    "F_DIVERGENCE_TYPES",
    "KTO_LOSS_TYPES",
    "LABEL_SMOOTHING_LOSS_TYPES",
    "LOSS_INPUT_GROUPS",
    "CompositeLoss",
    "LossInputs",
    "available_losses",
    "bradley_terry_loss",
    "check_dpo_settings",
    "check_kto_settings",
    "check_reference_free_settings",
    "chosen_token_nll_per_pair",
    "cpo_loss",
    "dpo_loss",
    "entropy_from_logits",
    "entropy_loss",
    "focal_loss",
    "forward_kl",
    "generalized_jsd",
    "get_loss",
    "importance_sampling_loss",
    "kd_loss_topk",
    "kto_loss",
    "loss_needs",
    "orpo_loss",
    "per_token_cross_entropy",
    "per_token_focal_loss",
    "per_token_forward_kl",
    "per_token_generalized_jsd",
    "per_token_importance_sampling_loss",
    "per_token_kd_topk",
    "per_token_ppo_clip_loss",
    "per_token_ref_kl",
    "per_token_reverse_kl",
    "ppo_clip_loss",
    "ref_kl_penalty",
    "register_loss",
    "reverse_kl",
    "selective_log_softmax",
    "token_logprobs",
    "weighted_cross_entropy",
]
