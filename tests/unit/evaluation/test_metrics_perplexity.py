"""WeightedPerplexity against a direct computation from random logits."""

import math

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.metrics import WeightedPerplexity, get_metric


def _reference_perplexity(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor
) -> float:
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    total, weight_total = 0.0, 0.0
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1]):
            w = float(weights[b, t])
            if w == 0 or int(labels[b, t]) == -100:
                continue
            total += -float(log_probs[b, t, labels[b, t]]) * w
            weight_total += w
    return math.exp(total / weight_total)


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 7, 13, generator=generator) * 3
    labels = torch.randint(0, 13, (3, 7), generator=generator)
    weights = torch.tensor(
        [
            [0.0, 0.0, 1.0, 1.0, 0.5, 1.0, 0.0],
            [0.0, 1.0, 1.0, 0.25, 1.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 2.0, 1.0, 1.0, 1.0],
        ]
    )
    labels[1, 6] = -100  # an ignore_index label under zero weight
    labels[2, 6] = -100  # ... and one under non-zero weight: must be ignored as well
    # Padding may hold garbage logits; zero-weight positions must not leak into the result.
    logits[0, 0] = float("nan")
    logits[1, 5] = float("inf")
    return logits, labels, weights


def test_update_from_logits_matches_weighted_mean_nll():
    metric = WeightedPerplexity()
    expected_logits, expected_labels, expected_weights = [], [], []
    for seed in (0, 1):
        logits, labels, weights = _batch(seed)
        metric.update_from_logits(logits, labels, weights)
        expected_logits.append(logits)
        expected_labels.append(labels)
        expected_weights.append(weights)
    expected = _reference_perplexity(
        torch.cat(expected_logits), torch.cat(expected_labels), torch.cat(expected_weights)
    )
    assert metric.compute().item() == pytest.approx(expected, rel=1e-5)
    assert metric.kind == "token"


def test_sums_and_token_nll_paths_agree_and_pool_across_batches():
    token_nll = torch.tensor([[2.0, 1.0, 9.0], [0.5, 3.0, 7.0]])
    weights = torch.tensor([[1.0, 0.5, 0.0], [1.0, 1.0, 0.0]])
    by_tokens = WeightedPerplexity()
    by_tokens.update_from_token_nll(token_nll[:1], weights[:1])
    by_tokens.update_from_token_nll(token_nll[1:], weights[1:])
    by_sums = WeightedPerplexity()
    by_sums.update((token_nll[0] * weights[0]).sum(), weights[0].sum())
    by_sums.update(float((token_nll[1] * weights[1]).sum()), float(weights[1].sum()))
    # Token-weighted over both batches, not the mean of per-batch perplexities.
    expected = math.exp((2.0 + 0.5 + 0.5 + 3.0) / 3.5)
    assert by_tokens.compute().item() == pytest.approx(expected, rel=1e-6)
    assert by_sums.compute().item() == pytest.approx(expected, rel=1e-6)
    by_sums.reset()
    assert math.isnan(by_sums.compute().item())


def test_update_rejects_per_token_tensors():
    metric = get_metric("perplexity")
    with pytest.raises(AutotrainError, match="update_from_token_nll"):
        metric.update(torch.ones(4), torch.ones(4))
    with pytest.raises(AutotrainError, match="loss_weights"):
        metric.update_from_token_nll(torch.ones(4), torch.ones(3))
