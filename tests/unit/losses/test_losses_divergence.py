"""Forward/reverse KL, generalized JSD and the top-k teacher variant against hand computations."""

import math

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import (
    forward_kl,
    generalized_jsd,
    kd_loss_topk,
    per_token_forward_kl,
    per_token_generalized_jsd,
    per_token_kd_topk,
    per_token_reverse_kl,
    reverse_kl,
)


def _softmax(row: list[float], temperature: float) -> list[float]:
    z = sum(math.exp(x / temperature) for x in row)
    return [math.exp(x / temperature) / z for x in row]


def _kl(p: list[float], q: list[float]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True) if pi > 0)


def _hand_jsd(p_s: list[float], p_t: list[float], beta: float) -> float:
    mixture = [beta * t + (1 - beta) * s for s, t in zip(p_s, p_t, strict=True)]
    return beta * _kl(p_t, mixture) + (1 - beta) * _kl(p_s, mixture)


@pytest.fixture
def pair(gen):
    student = torch.randn(6, 9, generator=gen, dtype=torch.float64)
    teacher = torch.randn(6, 9, generator=gen, dtype=torch.float64) * 1.5
    weights = torch.tensor([1.0, 0.5, 0.0, 2.0, 1.0, 0.25], dtype=torch.float64)
    return student, teacher, weights


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_kl_directions_match_hand(pair, temperature):
    student, teacher, weights = pair
    fwd, rev = 0.0, 0.0
    for i in range(student.shape[0]):
        p_s = _softmax(student[i].tolist(), temperature)
        p_t = _softmax(teacher[i].tolist(), temperature)
        fwd += weights[i].item() * _kl(p_t, p_s)
        rev += weights[i].item() * _kl(p_s, p_t)
    kwargs = {"temperature": temperature, "normalizer": 3.0}
    assert forward_kl(student, teacher, weights, **kwargs).item() == pytest.approx(fwd / 3.0)
    assert reverse_kl(student, teacher, weights, **kwargs).item() == pytest.approx(rev / 3.0)


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
def test_generalized_jsd_matches_hand(pair, beta):
    student, teacher, weights = pair
    total = 0.0
    for i in range(student.shape[0]):
        p_s = _softmax(student[i].tolist(), 2.0)
        p_t = _softmax(teacher[i].tolist(), 2.0)
        total += weights[i].item() * _hand_jsd(p_s, p_t, beta)
    ours = generalized_jsd(student, teacher, weights, beta=beta, temperature=2.0)
    assert ours.item() == pytest.approx(total / weights.sum().item(), rel=1e-10)


def test_jsd_endpoints_follow_trl_convention(pair):
    student, teacher, _ = pair
    fwd = per_token_forward_kl(student, teacher, temperature=1.5)
    rev = per_token_reverse_kl(student, teacher, temperature=1.5)
    jsd0 = per_token_generalized_jsd(student, teacher, beta=0.0, temperature=1.5)
    jsd1 = per_token_generalized_jsd(student, teacher, beta=1.0, temperature=1.5)
    assert torch.allclose(jsd0, fwd) and torch.allclose(jsd1, rev)
    with pytest.raises(AutotrainError, match="beta"):
        per_token_generalized_jsd(student, teacher, beta=1.5)


def test_divergence_gradient_accumulation_is_exact(pair):
    student, teacher, weights = pair
    student.requires_grad_(True)
    whole = generalized_jsd(student, teacher, weights, beta=0.3)
    (whole_grad,) = torch.autograd.grad(whole, student)
    split = sum(
        generalized_jsd(student[s], teacher[s], weights[s], beta=0.3, normalizer=weights.sum())
        for s in (slice(0, 1), slice(1, 6))
    )
    (split_grad,) = torch.autograd.grad(split, student)
    assert split.item() == pytest.approx(whole.item(), rel=1e-12)
    assert torch.allclose(split_grad, whole_grad, atol=1e-12)


def test_masked_vocabulary_gives_finite_loss_and_grad(pair):
    student, teacher, weights = pair
    student, teacher = student.clone(), teacher.clone()
    student[:, -1] = float("-inf")
    teacher[:, -1] = float("-inf")
    student.requires_grad_(True)
    for beta in (0.0, 0.5, 1.0):
        loss = generalized_jsd(student, teacher, weights, beta=beta)
        reference = generalized_jsd(student.detach()[:, :-1], teacher[:, :-1], weights, beta=beta)
        assert loss.item() == pytest.approx(reference.item(), rel=1e-10)
        (grad,) = torch.autograd.grad(loss, student)
        assert torch.isfinite(grad).all()


def test_vocab_mismatch_is_a_user_error(pair):
    student, teacher, weights = pair
    with pytest.raises(AutotrainError, match="teacher_logits shape"):
        forward_kl(student, teacher[:, :-1], weights)


def _topk_teacher(teacher: torch.Tensor, k: int):
    values, indices = teacher.topk(k, dim=-1)
    truncated = torch.full_like(teacher, float("-inf")).scatter(-1, indices, values)
    return values, indices, truncated


@pytest.mark.parametrize(("kind", "beta"), [("forward_kl", 0.5), ("jsd", 0.3), ("jsd", 0.0)])
def test_topk_is_exact_against_truncated_teacher(pair, kind, beta):
    """Forward KL and JSD against the renormalised top-k teacher are exact, off-support too."""
    student, teacher, weights = pair
    values, indices, truncated = _topk_teacher(teacher, k=3)
    ours = kd_loss_topk(student, values, indices, weights, kind=kind, beta=beta, temperature=2.0)
    full_beta = 0.0 if kind == "forward_kl" else beta
    reference = generalized_jsd(student, truncated, weights, beta=full_beta, temperature=2.0)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-10)


def test_topk_reverse_kl_uses_renormalised_student(pair):
    student, teacher, weights = pair
    values, indices, _ = _topk_teacher(teacher, k=4)
    per_token = per_token_kd_topk(student, values, indices, kind="reverse_kl", temperature=1.0)
    for i in range(student.shape[0]):
        p_full = _softmax(student[i].tolist(), 1.0)
        picked = [p_full[j] for j in indices[i].tolist()]
        p_cond = [p / sum(picked) for p in picked]
        q = _softmax(values[i].tolist(), 1.0)
        assert per_token[i].item() == pytest.approx(_kl(p_cond, q), rel=1e-10)
    jsd1 = per_token_kd_topk(student, values, indices, kind="jsd", beta=1.0)
    assert torch.allclose(jsd1, per_token)


def test_topk_padding_entries_are_ignored(pair):
    student, teacher, weights = pair
    values, indices, _ = _topk_teacher(teacher, k=3)
    padded_values = torch.cat([values, torch.full_like(values[:, :1], float("-inf"))], dim=-1)
    padded_indices = torch.cat([indices, torch.zeros_like(indices[:, :1])], dim=-1)
    student.requires_grad_(True)
    for kind in ("forward_kl", "reverse_kl", "jsd"):
        padded = kd_loss_topk(student, padded_values, padded_indices, weights, kind=kind)
        plain = kd_loss_topk(student, values, indices, weights, kind=kind)
        assert padded.item() == pytest.approx(plain.item(), rel=1e-10)
        (grad,) = torch.autograd.grad(padded, student)
        assert torch.isfinite(grad).all()


def test_topk_rejects_bad_kind_and_shapes(pair):
    student, teacher, weights = pair
    values, indices, _ = _topk_teacher(teacher, k=3)
    with pytest.raises(AutotrainError, match="kind"):
        kd_loss_topk(student, values, indices, weights, kind="tvd")
    with pytest.raises(AutotrainError, match="teacher_topk_values"):
        kd_loss_topk(student, values[:, :2], indices, weights)


def test_bf16_logits_compute_in_float32(pair):
    student, teacher, weights = pair
    student, teacher = student.float().bfloat16(), teacher.float().bfloat16()
    ours = generalized_jsd(student, teacher, weights.float(), beta=0.5)
    reference = generalized_jsd(student.float(), teacher.float(), weights.float(), beta=0.5)
    assert ours.dtype == torch.float32
    assert ours.item() == pytest.approx(reference.item(), rel=1e-6)
