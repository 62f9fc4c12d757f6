"""Next-token targets and trained-position forward passes, derived in one place.

Batch convention (from ``autotrain_pl.data``): ``loss_weights[b, t]`` is the weight of token
``input_ids[b, t]`` as a prediction target, so the logits at ``t - 1`` predict it. Every objective
and the ``TrainingClient`` get their targets here instead of rebuilding labels.

The LM head runs only at positions with non-zero weight: for a 4k vocabulary and ~30% trained
tokens that skips most of the head's compute and memory, and for 128k-vocabulary models far more.
The last decoder layer, too, runs its queries and MLP only there (``final_layer``), and no layer
runs past the last trained position of the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from autotrain_pl.losses import selective_log_softmax
from autotrain_pl.training.final_layer import trimmed_last_layer


@dataclass
class TokenSelection:
    """The trained target tokens of a batch, flattened.

    Attributes:
        rows: batch row of each selected target, shape ``[N]``.
        positions: position of the input token whose logits predict the target, ``[N]``.
        labels: target token ids, ``[N]``.
        weights: loss weights, ``[N]`` (float, may be fractional).
        batch_size: number of rows in the batch, for per-sequence sums.
    """

    rows: Tensor
    positions: Tensor
    labels: Tensor
    weights: Tensor
    batch_size: int

    def per_sequence_sum(self, values: Tensor) -> Tensor:
        """Sum ``values * weights`` per batch row (e.g. sequence log-likelihoods for DPO)."""
        out = torch.zeros(self.batch_size, dtype=values.dtype, device=values.device)
        return out.index_add(0, self.rows, values * self.weights.to(values.dtype))

    @property
    def total_weight(self) -> Tensor:
        return self.weights.sum()


def select_trained_tokens(batch: Mapping[str, Tensor], weights_key: str = "loss_weights",
                          ids_key: str = "input_ids", mask_key: str = "attention_mask",
                          include_zero_weight: bool = False) -> TokenSelection:
    """Shift ids and weights into (input position, target) pairs and keep the trained ones.

    Padding never counts, and with packed rows (``position_ids`` restarting at 0) the first token
    of each sample is never predicted from the previous sample.
    """
    input_ids = batch[ids_key]
    weights = batch[weights_key][:, 1:].to(torch.float32)
    attention_mask = batch.get(mask_key)
    if attention_mask is not None and attention_mask.dim() == 2:
        weights = weights * (attention_mask[:, 1:] > 0)
    position_ids = batch.get("position_ids")
    if position_ids is not None:
        weights = weights * (position_ids[:, 1:] != 0)
    keep = torch.ones_like(weights, dtype=torch.bool) if include_zero_weight else weights != 0
    rows, positions = keep.nonzero(as_tuple=True)
    return TokenSelection(
        rows=rows,
        positions=positions,
        labels=input_ids[:, 1:][rows, positions],
        weights=weights[rows, positions],
        batch_size=input_ids.shape[0],
    )


def causal_lm_parts(model) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The decoder (hidden states) and the LM head of a causal LM, peft-wrapped or not."""
    if hasattr(model, "get_base_model"):  # peft: LoRA layers are injected in place
        model = model.get_base_model()
    return model.base_model, model.get_output_embeddings()


def plain_lm_parts(model) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """``causal_lm_parts`` when logits are a plain projection of the last hidden state; None for
    architectures that post-process them (softcapping, scaling): use the model's own logits."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return None
    decoder, head = causal_lm_parts(model)
    if decoder is None or head is None or decoder is base:
        return None
    return decoder, head


def decoder_inputs(batch: Mapping[str, Tensor], ids_key: str = "input_ids",
                   mask_key: str = "attention_mask") -> dict[str, Tensor]:
    inputs = {"input_ids": batch[ids_key], "attention_mask": batch.get(mask_key)}
    if batch.get("position_ids") is not None:
        inputs["position_ids"] = batch["position_ids"]
    return inputs


def _through_last_trained_position(inputs: dict[str, Tensor | None],
                                   selection: TokenSelection) -> dict[str, Tensor | None]:
    """Drop the columns after the last position whose logits a loss reads.

    Attention is causal, so later tokens (the last token of every row, whose logits predict
    nothing, and anything after the last trained target) cannot change the kept logits.
    """
    width = inputs["input_ids"].shape[1]
    keep = int(selection.positions.max()) + 1 if selection.positions.numel() else width
    if keep >= width:
        return inputs
    cut = {}
    for name, value in inputs.items():
        if value is None:
            cut[name] = value
        elif value.dim() == 4:  # packed block masks [B, 1, T, T]
            cut[name] = value[:, :, :keep, :keep]
        else:
            cut[name] = value[:, :keep]
    return cut


def trained_inputs(batch: Mapping[str, Tensor], selection: TokenSelection,
                   ids_key: str = "input_ids", mask_key: str = "attention_mask"
                   ) -> dict[str, Tensor | None]:
    """The decoder inputs of ``batch``, cut after the last position ``selection`` reads."""
    return _through_last_trained_position(decoder_inputs(batch, ids_key, mask_key), selection)


def forward_trained_logits(model, batch: Mapping[str, Tensor], selection: TokenSelection | None = None,
                           ids_key: str = "input_ids", mask_key: str = "attention_mask",
                           weights_key: str = "loss_weights") -> tuple[Tensor, TokenSelection]:
    """Logits ``[N, V]`` at the trained positions only, and the selection they belong to."""
    if selection is None:
        selection = select_trained_tokens(batch, weights_key, ids_key, mask_key)
    inputs = trained_inputs(batch, selection, ids_key, mask_key)
    parts = plain_lm_parts(model)
    if parts is not None:
        decoder, head = parts
        return head(_trained_hidden(decoder, inputs, selection)), selection
    logits = model(**inputs, use_cache=False).logits
    return logits[selection.rows, selection.positions], selection


def forward_trained_states(model, batch: Mapping[str, Tensor],
                           selection: TokenSelection | None = None
                           ) -> tuple[Tensor, Tensor, TokenSelection]:
    """Logits ``[N, V]`` and the last hidden states ``[N, H]`` they come from, at the trained
    positions, from one forward pass: a value head on the policy's trunk (PPO) reads the states
    the LM head reads."""
    if selection is None:
        selection = select_trained_tokens(batch)
    inputs = trained_inputs(batch, selection)
    parts = plain_lm_parts(model)
    if parts is not None:
        decoder, head = parts
        hidden = _trained_hidden(decoder, inputs, selection)
        return head(hidden), hidden, selection
    output = model(**inputs, use_cache=False, output_hidden_states=True)
    at = (selection.rows, selection.positions)
    return output.logits[at], output.hidden_states[-1][at], selection


def _trained_hidden(decoder, inputs: Mapping[str, Tensor | None],
                    selection: TokenSelection) -> Tensor:
    """The decoder's last hidden states ``[N, H]`` at the selected positions (its last layer
    runs only there)."""
    with trimmed_last_layer(decoder, selection.rows, selection.positions):
        hidden = decoder(**inputs, use_cache=False).last_hidden_state
    return hidden[selection.rows, selection.positions]


def forward_logprobs(model, batch: Mapping[str, Tensor], temperature: float = 1.0,
                     **keys: str) -> tuple[Tensor, TokenSelection]:
    """Per-token log-probabilities ``[N]`` of the trained targets under ``model``."""
    logits, selection = forward_trained_logits(model, batch, **keys)
    if temperature != 1.0:
        logits = logits / temperature
    return selective_log_softmax(logits, selection.labels), selection


def count_real_tokens(batch: Mapping[str, Tensor], ids_key: str = "input_ids",
                      mask_key: str = "attention_mask") -> int:
    """Non-padding tokens of a batch; packed rows (4-D block masks) count every position."""
    mask = batch.get(mask_key)
    if mask is not None and mask.dim() == 2:
        return int(mask.sum())
    return batch[ids_key].numel()
