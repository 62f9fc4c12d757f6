"""Reward models: a scalar head on a causal base, trained on preference pairs (Bradley-Terry).

``RewardModule`` loads its policy as ``AutoModelForSequenceClassification`` with one label
(``models.load_model(head="reward")``) and trains it like TRL 1.16's ``RewardTrainer``: the loss
is ``-logsigmoid(r_chosen - r_rejected - margin)`` per pair (``losses.bradley_terry_loss``), plus
``center_rewards_coefficient * (r_chosen + r_rejected)^2`` when set, summed over pairs (the
normalization units). A reward is the score head at a sequence's last real token.

Both sequences of every pair go through the model in ONE forward pass. By default they are
packed (``training.shared_prefix``): one row per pair holding the shared prompt once, then the
rest of the chosen and of the rejected sequence, with a 4D mask that keeps them apart. The last
decoder layer and the score head run only at the two positions each row is read at.

The export is a plain ``AutoModelForSequenceClassification`` directory with the tokenizer and
chat template; ``models.RewardScorer`` loads it (or this module) to score conversations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from autotrain_pl.data import ChatDataModule
from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import bradley_terry_loss
from autotrain_pl.models.heads import unwrapped
from autotrain_pl.models.reward import (
    check_pad_token,
    reward_parts,
    rewards_at,
    sequence_rewards,
    set_pad_token,
)
from autotrain_pl.objectives.base import ObjectiveModule
from autotrain_pl.training import LossOutput, count_real_tokens
from autotrain_pl.training.final_layer import trimmed_last_layer
from autotrain_pl.training.shared_prefix import pack_pairs

PAIR_LAYOUTS = ("packed", "concatenated")


class RewardModule(ObjectiveModule):
    """A reward model trained on chosen/rejected pairs with the Bradley-Terry loss.

    Args:
        center_rewards_coefficient: weight of ``(r_chosen + r_rejected)^2`` per pair, which keeps
            rewards centred at 0 (Eisenstein et al., 2023); None (TRL's default) adds nothing.
        pair_layout: ``packed`` (one row per pair, prompt encoded once) or ``concatenated``
            (chosen rows then rejected rows, as TRL; for attention without 4D masks). Packing
            falls back to concatenation by itself where it cannot apply.
        **kwargs: the shared options of ``ObjectiveModule`` (model, LoRA/QLoRA, optimizer, ...).
            With LoRA the ``score`` head trains in full.

    Rows with a ``margin`` column give the batch a ``margin`` ``[B]``, subtracted from each
    pair's reward gap (Llama 2). Logged for ``train/`` and ``val/``, as means per pair: ``loss``,
    ``accuracy`` (share of pairs with ``r_chosen > r_rejected``), ``rewards/chosen``,
    ``rewards/rejected`` and ``rewards/margins`` (``r_chosen - r_rejected``).
    """

    def __init__(self, *args: Any, center_rewards_coefficient: float | None = None,
                 pair_layout: str = "packed", **kwargs: Any) -> None:
        if center_rewards_coefficient is not None and (
                isinstance(center_rewards_coefficient, bool) or center_rewards_coefficient < 0):
            raise AutotrainError(f"model.center_rewards_coefficient={center_rewards_coefficient!r} "
                                 "must be >= 0 (e.g. 0.01), or null for none")
        if pair_layout not in PAIR_LAYOUTS:
            raise AutotrainError(f"model.pair_layout={pair_layout!r} is unknown; use packed "
                                 "(default) or concatenated")
        super().__init__(*args, **kwargs)

    def load_policy(self, model_name_or_path: str, **options: Any):
        """The base with a one-label ``score`` head (``AutoModelForSequenceClassification``)."""
        return super().load_policy(model_name_or_path, head="reward", **options)

    # -- data -----------------------------------------------------------------------------------
    @classmethod
    def check_datamodule(cls, datamodule) -> None:
        """Refuse chat data: a reward model learns from pairs (``aitrain`` calls this before the
        model loads)."""
        if isinstance(datamodule, ChatDataModule) and datamodule.kind != "preference":
            source = datamodule.data_path or datamodule.valid_path or datamodule.test_path
            raise AutotrainError(
                f"{cls.__name__} trains on preference pairs (prompt/chosen/rejected rows), but "
                f"{source} holds chat rows; give preference data (e.g. synthetic:preference)"
            )

    def setup(self, stage: str) -> None:
        if stage != "predict":
            self.check_datamodule(self.trainer.datamodule)
        super().setup(stage)

    def attach_tokenizer(self, tokenizer, renderer=None) -> None:
        """As the base, and the pad id into the model config, where an exported sequence
        classifier finds the last real token."""
        super().attach_tokenizer(tokenizer, renderer)
        pad_token_id = set_pad_token(self.model, tokenizer)
        if renderer is not None:
            check_pad_token(pad_token_id, renderer)

    # -- loss -----------------------------------------------------------------------------------
    def forward_rewards(self, model, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Rewards ``[B]`` of the chosen and the rejected sequences, in one forward pass."""
        packed = None
        if self.hparams.pair_layout == "packed" and reward_parts(model) is not None:
            config = unwrapped(model).config
            packed = pack_pairs(batch, getattr(config, "_attn_implementation", None),
                                mask_dtype=unwrapped(model).dtype)
        if packed is not None:
            rewards = rewards_at(model, packed.model_inputs(), packed.read_rows,
                                 packed.read_positions, trimmed_last_layer)
            return rewards[0::2], rewards[1::2]
        input_ids = torch.cat([batch["chosen_input_ids"], batch["rejected_input_ids"]])
        attention_mask = torch.cat([batch["chosen_attention_mask"],
                                    batch["rejected_attention_mask"]])
        rewards = sequence_rewards(model, input_ids, attention_mask, trimmed_last_layer)
        chosen, rejected = rewards.chunk(2)
        return chosen, rejected

    def compute_loss(self, batch: Mapping[str, Any]) -> LossOutput:
        chosen, rejected = (r.float() for r in self.forward_rewards(self.model, batch))
        loss = bradley_terry_loss(
            chosen, rejected, margin=batch.get("margin"), normalizer=1,
            center_rewards_coefficient=self.hparams.center_rewards_coefficient,
        )
        with torch.no_grad():
            chosen, rejected = chosen.detach(), rejected.detach()
            metrics = {
                "accuracy": (chosen > rejected).float().sum(),
                "rewards/chosen": chosen.sum(),
                "rewards/rejected": rejected.sum(),
                "rewards/margins": (chosen - rejected).sum(),
            }
        tokens = count_real_tokens(batch, "chosen_input_ids", "chosen_attention_mask") + \
            count_real_tokens(batch, "rejected_input_ids", "rejected_attention_mask")
        return LossOutput.from_sum(loss, chosen.numel(), metrics, tokens)

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        raise AutotrainError("a reward model does not generate; score conversations with "
                             "autotrain_pl.RewardScorer.load(<run or export>)")
