"""Per-token log-probabilities and entropies, computed without materialising a full log-softmax.

A language-model head produces ``[N, V]`` logits with V up to ~250k. The naive
``logits.log_softmax(-1).gather(-1, labels)`` allocates (and keeps for backward) a second ``[N, V]``
tensor. ``selective_log_softmax`` keeps only the logits themselves and processes rows in chunks in
both forward and backward (recomputing the softmax), so its peak extra memory is one chunk.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses._reduction import compute_dtype

_CHUNK_ELEMENTS = 1 << 24
"""Elements per chunk (64 MiB in float32): bounds the transient memory of the row loops."""


def _rows_per_chunk(vocab_size: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(vocab_size, 1))


class _SelectiveLogSoftmax(torch.autograd.Function):
    """``log_softmax(x)[index]`` with a chunked, memory-light forward and backward.

    Forward: ``out[r, k] = log_softmax(x[r])[index[r, k]]``, one row chunk at a time.
    Backward: ``dx[r, j] = sum_k g[r, k] * (1[j == index[r, k]] - softmax(x[r])[j])``, with the
    softmax recomputed per chunk, so only the logits themselves are kept between the passes.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, logits: Tensor, index: Tensor) -> Tensor:  # type: ignore
        dtype = compute_dtype(logits)
        rows = _rows_per_chunk(logits.shape[-1])
        out = torch.empty(index.shape, dtype=dtype, device=logits.device)
        for start in range(0, logits.shape[0], rows):
            chunk_logprobs = torch.log_softmax(logits[start : start + rows].to(dtype), dim=-1)
            out[start : start + rows] = chunk_logprobs.gather(-1, index[start : start + rows])
        ctx.save_for_backward(logits, index)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: Tensor) -> tuple[Tensor, None]:  # type: ignore
        logits, index = ctx.saved_tensors  # type: ignore[attr-defined]
        rows = _rows_per_chunk(logits.shape[-1])
        if logits.shape[0] <= rows:  # one chunk: no extra copy
            return _chunk_grad(logits, index, grad_out).to(logits.dtype), None
        grad_logits = torch.empty_like(logits)
        for start in range(0, logits.shape[0], rows):
            part = slice(start, start + rows)
            grad_logits[part] = _chunk_grad(logits[part], index[part], grad_out[part])
        return grad_logits, None


def _chunk_grad(logits: Tensor, index: Tensor, grad_out: Tensor) -> Tensor:
    """Gradient of ``sum_k g[:, k] * log_softmax(x)[:, index[:, k]]`` with respect to ``x``."""
    dtype = compute_dtype(logits)
    grad = grad_out.to(dtype)
    probs = torch.softmax(logits.to(dtype), dim=-1)
    probs.mul_(-grad.sum(dim=-1, keepdim=True))
    return probs.scatter_add_(-1, index, grad)


def selective_log_softmax(logits: Tensor, index: Tensor) -> Tensor:
    """Gather ``log_softmax(logits)`` at ``index`` without building the full log-softmax.

    Formula: ``logp[..., k] = logits[..., index[..., k]] - logsumexp(logits[...])``.

    Equivalent to ``logits.log_softmax(-1).gather(-1, index)`` (TRL's ``selective_log_softmax``),
    but it runs in row chunks and keeps only the logits for backward (the softmax is recomputed).
    Half-precision logits are upcast chunk by chunk, so the result is float32 (float64 stays
    float64): bf16 log-probs are too coarse for KL terms and PPO ratios. First-order gradients
    only (no double backward).

    Args:
        logits: ``[..., V]`` logits.
        index: ``[...]`` (one id per row) or ``[..., K]`` (K ids per row, e.g. a teacher's top-k).

    Returns:
        Log-probabilities shaped like ``index``.
    """
    squeeze = index.dim() == logits.dim() - 1
    if squeeze:
        index = index.unsqueeze(-1)
    if index.shape[:-1] != logits.shape[:-1]:
        raise ValueError(
            f"index shape {tuple(index.shape)} does not match logits shape {tuple(logits.shape)}"
        )
    vocab_size = logits.shape[-1]
    flat_logits = logits.reshape(-1, vocab_size)
    flat_index = index.reshape(-1, index.shape[-1]).long()
    out = _SelectiveLogSoftmax.apply(flat_logits, flat_index)
    out = out.reshape(index.shape)
    return out.squeeze(-1) if squeeze else out


def check_temperature(temperature: float, field: str = "temperature") -> None:
    """Raise ``AutotrainError`` unless ``temperature`` is a positive number."""
    if isinstance(temperature, bool) or not temperature > 0:
        raise AutotrainError(f"{field}={temperature!r} must be > 0; use 1.0 for plain logits.")


def token_logprobs(logits: Tensor, labels: Tensor, temperature: float = 1.0) -> Tensor:
    """Log-probability of each label token: ``log softmax(logits / T)[label]``.

    Negative labels (``-100``, the usual ignore index) give 0 instead of an indexing error, so that
    callers may pass unselected positions; give them zero loss weight.

    Args:
        logits: ``[..., V]`` logits at the positions that predict ``labels``.
        labels: ``[...]`` token ids (already shifted).
        temperature: Softmax temperature ``T``; sampling logprobs must use the sampler's ``T``.

    Returns:
        ``[...]`` float32 (float64 for float64 logits) log-probabilities.
    """
    check_temperature(temperature)
    if temperature != 1.0:
        logits = logits / temperature
    ignored = labels < 0
    logprobs = selective_log_softmax(logits, labels.clamp_min(0))
    return logprobs.masked_fill(ignored, 0.0)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Shannon entropy in nats of ``softmax(logits)`` over the last dim, in row chunks.

    Formula: ``H = -sum_v p_v log p_v`` with ``p = softmax(logits)``; ``-inf`` logits (masked
    vocabulary entries) contribute 0 and do not produce NaN gradients.

    Returns:
        ``logits.shape[:-1]`` float32 (float64 for float64 logits) entropies.
    """
    dtype = compute_dtype(logits)
    vocab_size = logits.shape[-1]
    flat = logits.reshape(-1, vocab_size)
    rows = _rows_per_chunk(vocab_size)
    floor = torch.finfo(dtype).min
    parts = []
    for start in range(0, max(flat.shape[0], 1), rows):  # one pass even for 0 rows: keeps grad_fn
        logp = torch.log_softmax(flat[start : start + rows].to(dtype), dim=-1).clamp_min(floor)
        parts.append(-(logp.exp() * logp).sum(dim=-1))
    return torch.cat(parts).reshape(logits.shape[:-1])
