"""On-policy distillation (GKD): replace a batch's responses with samples from the student.

The student samples a reply to its own prompt; the teacher then scores the same sampled tokens
behind its own prompt. Sampled tokens (stop token included) carry weight 1, so the student learns
the teacher's distribution on the states the student actually visits (Agarwal et al., 2024).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from autotrain_pl.data import SFTCollator

_SIDES = (("", "prompt_length"), ("teacher_", "teacher_prompt_length"))


def prompts_of(batch: Mapping[str, Any], prefix: str = "") -> list[list[int]]:
    """The prompt ids of every row of one side (prompts are prefixes of right-padded rows)."""
    lengths = batch["teacher_prompt_length" if prefix else "prompt_length"].tolist()
    ids = batch[f"{prefix}input_ids"]
    return [ids[row, :length].tolist() for row, length in enumerate(lengths)]


def with_responses(batch: Mapping[str, Any], responses: Sequence[Sequence[int]],
                   pad_token_id: int) -> dict[str, Any]:
    """A new batch: each side's prompt followed by ``responses[row]`` (weight 1 per token)."""
    device = batch["input_ids"].device
    collate = SFTCollator(pad_token_id)
    out: dict[str, Any] = {}
    for prefix, length_key in _SIDES:
        features = [
            {"input_ids": prompt + list(response),
             "loss_weights": [0.0] * len(prompt) + [1.0] * len(response)}
            for prompt, response in zip(prompts_of(batch, prefix), responses, strict=True)
        ]
        padded = collate(features)
        out.update({f"{prefix}{key}": value.to(device) for key, value in padded.items()})
        out[length_key] = batch[length_key]
    out["has_response"] = torch.tensor([len(r) > 0 for r in responses], device=device)
    out["on_policy"] = True
    return out


@torch.no_grad()
def sample_on_policy(model, tokenizer, renderer, batch: Mapping[str, Any], sampling,
                     pad_token_id: int) -> dict[str, Any]:
    """Sample the student's replies to the batch's student prompts; return the rebuilt batch."""
    from autotrain_pl.generation import TokenCompleter

    prompts = prompts_of(batch)
    was_training = model.training
    model.eval()
    try:
        completer = TokenCompleter(model, tokenizer, renderer, return_logprobs=False)
        completions = completer.batch_complete(prompts, sampling, batch_size=len(prompts))
    finally:
        model.train(was_training)
    return with_responses(batch, [c.tokens for c in completions], pad_token_id)


def response_tokens(batch: Mapping[str, Tensor], prefix: str = "") -> list[list[int]]:
    """The trained tokens of each row (for tests and debugging)."""
    ids, weights = batch[f"{prefix}input_ids"], batch[f"{prefix}loss_weights"]
    return [row[w != 0].tolist() for row, w in zip(ids, weights, strict=True)]
