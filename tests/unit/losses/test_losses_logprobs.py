"""selective_log_softmax, token_logprobs and entropy_from_logits against hand computations."""

import math

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import entropy_from_logits, selective_log_softmax, token_logprobs
from autotrain_pl.losses import logprobs as logprobs_module


def _hand_logprob(row: list[float], index: int) -> float:
    return row[index] - math.log(sum(math.exp(x) for x in row))


def test_selective_log_softmax_matches_hand(gen):
    logits = torch.randn(5, 9, generator=gen, dtype=torch.float64)
    index = torch.randint(0, 9, (5,), generator=gen)
    out = selective_log_softmax(logits, index)
    expected = [_hand_logprob(logits[i].tolist(), int(index[i])) for i in range(5)]
    assert out.shape == (5,)
    assert torch.allclose(out, torch.tensor(expected, dtype=torch.float64), atol=1e-12)


def test_selective_log_softmax_topk_index_and_leading_dims(gen):
    logits = torch.randn(2, 3, 8, generator=gen)
    index = torch.randint(0, 8, (2, 3, 4), generator=gen)
    out = selective_log_softmax(logits, index)
    assert out.shape == (2, 3, 4)
    assert torch.allclose(out, logits.log_softmax(-1).gather(-1, index), atol=1e-6)


def test_selective_log_softmax_bf16_is_upcast(gen):
    logits = (torch.randn(6, 50, generator=gen) * 5).to(torch.bfloat16)
    index = torch.randint(0, 50, (6,), generator=gen)
    out = selective_log_softmax(logits, index)
    assert out.dtype == torch.float32
    reference = logits.float().log_softmax(-1).gather(-1, index[:, None]).squeeze(-1)
    assert torch.allclose(out, reference, atol=1e-5)


def test_selective_log_softmax_gradcheck():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([[0, 0], [5, 2], [3, 3], [1, 4]])  # duplicates exercise scatter_add
    assert torch.autograd.gradcheck(lambda x: selective_log_softmax(x, index), (logits,))


def test_selective_log_softmax_chunked_matches_naive(monkeypatch, gen):
    monkeypatch.setattr(logprobs_module, "_CHUNK_ELEMENTS", 20)  # 2 rows per chunk at V=10
    logits = torch.randn(7, 10, generator=gen, requires_grad=True)
    index = torch.randint(0, 10, (7,), generator=gen)
    upstream = torch.randn(7, generator=gen)
    (selective_log_softmax(logits, index) * upstream).sum().backward()
    ours = logits.grad.clone()
    logits.grad = None
    naive = logits.log_softmax(-1).gather(-1, index[:, None]).squeeze(-1)
    (naive * upstream).sum().backward()
    assert torch.allclose(ours, logits.grad, atol=1e-6)


def test_token_logprobs_temperature_and_ignore(gen):
    logits = torch.randn(4, 7, generator=gen, dtype=torch.float64)
    labels = torch.tensor([1, -100, 6, 0])
    out = token_logprobs(logits, labels, temperature=2.0)
    for i in (0, 2, 3):
        row = (logits[i] / 2.0).tolist()
        assert out[i].item() == pytest.approx(_hand_logprob(row, int(labels[i])), abs=1e-12)
    assert out[1].item() == 0.0
    with pytest.raises(AutotrainError, match="temperature"):
        token_logprobs(logits, labels, temperature=0.0)


def test_entropy_matches_hand(gen):
    logits = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    out = entropy_from_logits(logits)
    for i in range(3):
        z = sum(math.exp(x) for x in logits[i].tolist())
        probs = [math.exp(x) / z for x in logits[i].tolist()]
        assert out[i].item() == pytest.approx(-sum(p * math.log(p) for p in probs), abs=1e-12)


def test_entropy_with_masked_vocab_is_finite():
    logits = torch.tensor([[0.0, 1.0, float("-inf")], [2.0, float("-inf"), float("-inf")]])
    logits.requires_grad_(True)
    out = entropy_from_logits(logits)
    p = torch.softmax(torch.tensor([0.0, 1.0]), -1)
    assert out[0].item() == pytest.approx(-(p * p.log()).sum().item(), abs=1e-6)
    assert out[1].item() == pytest.approx(0.0, abs=1e-7)
    out.sum().backward()
    assert torch.isfinite(logits.grad).all()
