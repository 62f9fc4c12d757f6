"""Packing the G rollouts of a prompt into one row scores every token exactly as its own
``prompt + continuation`` row would."""

import torch

from autotrain_pl.models import load_model
from autotrain_pl.objectives.rl.packing import (
    continuation_tensors,
    continuation_width,
    pack_rollouts,
)
from autotrain_pl.rl.types import Rollout
from autotrain_pl.training.tokens import forward_logprobs


def rollout(prompt, continuation, mask, group):
    return Rollout(token_ids=prompt + continuation, prompt_length=len(prompt),
                   logprobs=[0.0] * len(prompt) + [-1.0] * len(continuation),
                   mask=[0] * len(prompt) + mask, reward=0.0, group=group)


def test_packed_rollouts_score_like_separate_rows():
    torch.manual_seed(0)
    model = load_model("builtin:tiny").eval()
    first, second = [5, 17, 99, 240, 31], [8, 64, 12]
    rollouts = [
        rollout(first, [40, 41, 42], [1, 1, 1], 0),
        rollout(first, [50], [1], 0),
        rollout(first, [60, 61, 7, 8, 62], [1, 1, 0, 0, 1], 0),  # environment tokens inside
        rollout(second, [70, 71], [1, 1], 1),
        rollout(second, [80, 81, 82, 83], [1, 1, 1, 1], 1),
    ]
    packed = pack_rollouts(rollouts, pad_token_id=0)
    assert packed.inputs["input_ids"].shape[0] == 2  # one row per prompt
    assert packed.tokens == len(first) + 9 + len(second) + 6
    width = continuation_width(rollouts)
    mask, behaviour = continuation_tensors(rollouts, width)
    with torch.no_grad():
        flat, _ = forward_logprobs(model, packed.inputs, selection=packed.selection)
        packed_logprobs = packed.dense(flat, mask)
        for n, r in enumerate(rollouts):
            ids = torch.tensor([r.token_ids])
            logits = model(input_ids=ids).logits[0].log_softmax(-1)
            for j in range(len(r.token_ids) - r.prompt_length):
                position = r.prompt_length + j
                expected = logits[position - 1, r.token_ids[position]] if mask[n, j] else 0.0
                assert torch.isclose(packed_logprobs[n, j], torch.as_tensor(expected),
                                     atol=1e-5), (n, j)
    assert mask[2].tolist() == [1, 1, 0, 0, 1] and behaviour[1].tolist() == [-1, 0, 0, 0, 0]
