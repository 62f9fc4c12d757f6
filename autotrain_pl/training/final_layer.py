"""Run the last decoder layer only where a loss reads its output.

Every layer but the last must run at all positions: their outputs are the keys and values of the
layers above. The last layer's output, however, feeds only the final norm and the LM head, and
``forward_trained_logits`` reads the head at trained positions alone. So in the last layer the
query projection, the attention, ``o_proj`` and the MLP run at the trained positions, while keys
and values still come from every position. For SFT on chats with long prompts and short answers
(10–30% trained tokens) this removes most of one layer's matmuls: about 9% of the model FLOPs of
an 8-layer model, forward and backward, with the same logits and gradients at trained positions.

Supported: the Llama-style layers of ``transformers`` >= 5 (Llama, Mistral, Qwen2) with ``sdpa``
or ``eager`` attention, matched by exact class name. Anything else runs the original layer
unchanged: other architectures, subclasses, FSDP-wrapped layers (their forward gathers the
shards), flash-attention's unpadded batches, and batches whose rows are mostly trained. The
stand-in calls the layer's submodules directly, so hooks on the layer module itself do not fire
and the last layer is not activation-checkpointed (it now holds activations for the trained
positions only, plus keys and values).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import transformers
from torch import Tensor, nn

SUPPORTED_LAYERS = frozenset({"LlamaDecoderLayer", "MistralDecoderLayer", "Qwen2DecoderLayer"})
SUPPORTED_ATTENTION = frozenset({"sdpa", "eager"})
# Above this share of query slots per row the gathers cost more than the skipped matmuls save.
MAX_QUERY_SHARE = 0.9
_LAYERS_RETURN_TENSORS = int(transformers.__version__.split(".")[0]) >= 5


def last_layer(decoder: nn.Module) -> nn.Module | None:
    """The decoder's last layer when it can be trimmed, else None."""
    layers = getattr(decoder, "layers", None)
    config = getattr(decoder, "config", None)
    if not _LAYERS_RETURN_TENSORS or layers is None or config is None or len(layers) == 0:
        return None
    layer = layers[_last_index(decoder)]
    if type(layer).__name__ not in SUPPORTED_LAYERS:
        return None
    if getattr(config, "_attn_implementation", None) not in SUPPORTED_ATTENTION:
        return None
    return layer


@contextmanager
def trimmed_last_layer(decoder: nn.Module, rows: Tensor, positions: Tensor) -> Iterator[None]:
    """Within the block, the decoder's last layer computes only ``(rows, positions)``.

    ``rows`` must be sorted (``nonzero`` order). Other positions of the last layer's output are
    zeros: read the decoder's hidden states at ``(rows, positions)`` only. The original layer is
    put back on exit, also on error.
    """
    layer = last_layer(decoder)
    if layer is None:
        yield
        return
    index = _last_index(decoder)
    decoder.layers[index] = _TrimmedLayer(layer, rows, positions)
    try:
        yield
    finally:
        decoder.layers[index] = layer


def _last_index(decoder: nn.Module) -> int:
    """The last layer the decoder runs (it iterates ``layers[:config.num_hidden_layers]``)."""
    return min(decoder.config.num_hidden_layers, len(decoder.layers)) - 1


class _TrimmedLayer(nn.Module):
    """Stands in for one Llama-style layer for one forward pass (not checkpointed)."""

    def __init__(self, layer: nn.Module, rows: Tensor, positions: Tensor) -> None:
        super().__init__()
        self.layer = layer
        self.rows, self.positions = rows, positions

    def forward(self, hidden_states: Tensor, attention_mask: Tensor | None = None,
                position_embeddings: tuple[Tensor, Tensor] | None = None, **kwargs) -> Tensor:
        batch, length, _ = hidden_states.shape
        slots = _query_slots(self.rows, self.positions, batch)
        mask_ok = attention_mask is None or (isinstance(attention_mask, Tensor) and attention_mask.dim() == 4)
        if (slots is None or position_embeddings is None or not mask_ok
                or slots[0].shape[1] > MAX_QUERY_SHARE * length):
            return self.layer(hidden_states, attention_mask=attention_mask,
                              position_embeddings=position_embeddings, **kwargs)
        query_pos, valid, slot = slots
        batch_index = torch.arange(batch, device=hidden_states.device)[:, None]
        layer, attn = self.layer, self.layer.self_attn

        normed = layer.input_layernorm(hidden_states)
        attn_out = _attention(attn, normed, normed[batch_index, query_pos], query_pos, valid,
                              attention_mask, position_embeddings)
        out = hidden_states[batch_index, query_pos] + attn.o_proj(attn_out)
        out = out + layer.mlp(layer.post_attention_layernorm(out))
        # Only the trained positions carry the last layer's output; the caller reads those.
        full = hidden_states.new_zeros(hidden_states.shape)
        return full.index_put((self.rows, self.positions), out[self.rows, slot])


def _query_slots(rows: Tensor, positions: Tensor, batch: int) -> tuple[Tensor, Tensor, Tensor] | None:
    """Lay the selected positions out per row: ``query_pos [B, Q]``, ``valid [B, Q]``, ``slot [N]``."""
    if rows.numel() == 0:
        return None
    counts = torch.bincount(rows, minlength=batch)
    width = int(counts.max())
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(rows.numel(), device=rows.device) - starts[rows]
    query_pos = torch.zeros(batch, width, dtype=torch.long, device=rows.device)
    valid = torch.zeros(batch, width, dtype=torch.bool, device=rows.device)
    query_pos[rows, slot] = positions
    valid[rows, slot] = True
    return query_pos, valid, slot


def _attention(attn: nn.Module, normed: Tensor, normed_queries: Tensor, query_pos: Tensor,
               valid: Tensor, attention_mask: Tensor | None,
               position_embeddings: tuple[Tensor, Tensor]) -> Tensor:
    """Attention output ``[B, Q, heads * head_dim]`` for the query slots over all keys."""
    modeling = sys.modules[type(attn).__module__]
    batch, length, _ = normed.shape
    width = query_pos.shape[1]
    query = attn.q_proj(normed_queries).view(batch, width, -1, attn.head_dim).transpose(1, 2)
    key = attn.k_proj(normed).view(batch, length, -1, attn.head_dim).transpose(1, 2)
    value = attn.v_proj(normed).view(batch, length, -1, attn.head_dim).transpose(1, 2)

    cos, sin = (t.expand(batch, -1, -1) for t in position_embeddings)
    batch_index = torch.arange(batch, device=normed.device)[:, None]
    query, _ = modeling.apply_rotary_pos_emb(query, query, cos[batch_index, query_pos],
                                             sin[batch_index, query_pos])
    _, key = modeling.apply_rotary_pos_emb(key, key, cos, sin)

    mask = _query_mask(attention_mask, query_pos, valid, length)
    implementation = attn.config._attn_implementation
    if implementation == "eager":
        attention_fn = modeling.eager_attention_forward
    else:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        attention_fn = ALL_ATTENTION_FUNCTIONS[implementation]
    output, _ = attention_fn(attn, query, key, value, mask,
                             dropout=attn.attention_dropout if attn.training else 0.0,
                             scaling=attn.scaling)
    return output.reshape(batch, width, -1)


def _query_mask(attention_mask: Tensor | None, query_pos: Tensor, valid: Tensor,
                length: int) -> Tensor:
    """The rows of the layer's ``[B, 1, T, T]`` mask at the query slots, ``[B, 1, Q, T]``.

    ``None`` (sdpa's causal fast path, no padding) becomes the causal pattern. Empty slots attend
    everywhere, so they stay finite; their outputs are never read.
    """
    batch = query_pos.shape[0]
    if attention_mask is None:
        keys = torch.arange(length, device=query_pos.device)
        mask = keys[None, None, :] <= query_pos[:, :, None]
        return (mask | ~valid[:, :, None]).unsqueeze(1)
    full = attention_mask.expand(batch, -1, -1, -1)
    batch_index = torch.arange(batch, device=query_pos.device)[:, None]
    rows = full[batch_index, 0, query_pos]  # [B, Q, T]
    if rows.dtype == torch.bool:
        rows = rows | ~valid[:, :, None]
    else:
        rows = rows.masked_fill(~valid[:, :, None], 0.0)
    return rows.unsqueeze(1)
