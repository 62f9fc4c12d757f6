"""Reward models: a scalar head on a causal base, trained on preference pairs (Bradley-Terry).

``RewardModule`` loads its policy as ``AutoModelForSequenceClassification`` with one label
(``models.load_model(head="reward")``) and trains it like TRL 1.16's ``RewardTrainer``: the loss
is ``-logsigmoid(r_chosen - r_rejected - margin)`` per pair (``losses.bradley_terry_loss``), plus
``center_rewards_coefficient * (r_chosen + r_rejected)^2`` when set, summed over pairs (the
normalization units). A reward is the score head at a sequence's last real token.

Both sequences of every pair go through the model in ONE forward pass, laid out as the preference
objectives lay them out (``objectives.preference.data.PairEncoding``): by default packed, one
row per pair holding the prompt once, then the chosen and the rejected reply, with a 4-D mask
that keeps them apart. The last decoder layer and the score head run only at the two positions
each row is read at (``end_rows``/``end_positions`` of ``data.pair_batches``).

The export is a plain ``AutoModelForSequenceClassification`` directory with the tokenizer and
chat template; ``models.RewardScorer`` loads it (or this module) to score conversations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import bradley_terry_loss
from autotrain_pl.models.reward import check_pad_token, rewards_at, set_pad_token
from autotrain_pl.objectives.base import ObjectiveModule
from autotrain_pl.objectives.preference.data import PairEncoding
from autotrain_pl.training import LossOutput
from autotrain_pl.training.final_layer import trimmed_last_layer


class RewardModule(ObjectiveModule):
    """A reward model trained on chosen/rejected pairs with the Bradley-Terry loss.

    Args:
        center_rewards_coefficient: weight of ``(r_chosen + r_rejected)^2`` per pair, which keeps
            rewards centred at 0 (Eisenstein et al., 2023); None (TRL's default) adds nothing.
        pair_layout: ``packed`` (one row per pair, prompt encoded once) or ``concatenated``
            (chosen rows then rejected rows, as TRL; for attention implementations without 4-D
            masks, e.g. flash_attention_2).
        **kwargs: the shared options of ``ObjectiveModule`` (model, LoRA/QLoRA, optimizer, ...).
            With LoRA the ``score`` head trains in full.

    Rows with a ``margin`` column give the batch a ``margin`` ``[B]``, subtracted from each
    pair's reward gap (Llama 2). Logged for ``train/`` and ``val/``, as means per pair: ``loss``,
    ``accuracy`` (share of pairs with ``r_chosen > r_rejected``), ``rewards/chosen``,
    ``rewards/rejected`` and ``rewards/margins`` (``r_chosen - r_rejected``).
    """

    data_kind = "preference"

    def __init__(self, *args: Any, center_rewards_coefficient: float | None = None,
                 pair_layout: str = "packed", **kwargs: Any) -> None:
        if center_rewards_coefficient is not None and (
                isinstance(center_rewards_coefficient, bool)
                or not 0 <= center_rewards_coefficient < float("inf")):  # NaN fails too
            raise AutotrainError(f"model.center_rewards_coefficient={center_rewards_coefficient!r} "
                                 "must be >= 0 (e.g. 0.01), or null for none")
        encoding = PairEncoding(pair_layout, cache_index=False)  # checks the layout first
        super().__init__(*args, **kwargs)
        self.encoding = encoding

    def load_policy(self, model_name_or_path: str, **options: Any):
        """The base with a one-label ``score`` head (``AutoModelForSequenceClassification``)."""
        return super().load_policy(model_name_or_path, head="reward", **options)

    # -- data -----------------------------------------------------------------------------------
    def example_encoding(self) -> PairEncoding:
        """Pairs laid out for one forward pass (``data.EncodingProvider``)."""
        return self.encoding

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
        mask = batch["attention_mask"]
        inputs = {"input_ids": batch["input_ids"], "position_ids": batch.get("position_ids"),
                  # concatenated rows are right-padded: causal attention never sees the padding
                  # after a real token, and without a mask the decoder takes its fast causal path
                  "attention_mask": mask if mask.dim() == 4 else None}
        rewards = rewards_at(model, inputs, batch["end_rows"], batch["end_positions"],
                             trimmed_last_layer)
        by_side = rewards.new_empty(2, batch["num_pairs"])
        by_side[batch["end_sides"], batch["end_pairs"]] = rewards
        return by_side[0], by_side[1]

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
        return LossOutput.from_sum(loss, chosen.numel(), metrics, batch["tokens"])

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        raise AutotrainError("a reward model does not generate; score conversations with "
                             "autotrain_pl.RewardScorer.load(<run or export>)")
