"""DPO family and Bradley-Terry losses against hand computations (TRL parity: test_losses_trl)."""

import math

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import bradley_terry_loss, dpo_loss


def _logsigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


@pytest.fixture
def logps():
    policy_chosen = torch.tensor([-10.0, -12.0, -8.0, -20.0], dtype=torch.float64)
    policy_rejected = torch.tensor([-11.0, -11.5, -9.5, -19.0], dtype=torch.float64)
    ref_chosen = torch.tensor([-10.5, -12.0, -9.0, -20.5], dtype=torch.float64)
    ref_rejected = torch.tensor([-10.8, -11.0, -9.0, -19.5], dtype=torch.float64)
    return policy_chosen, policy_rejected, ref_chosen, ref_rejected


def _deltas(logps):
    pc, pr, rc, rr = (t.tolist() for t in logps)
    return [(a - c) - (b - d) for a, b, c, d in zip(pc, pr, rc, rr, strict=True)]


@pytest.mark.parametrize(
    ("loss_type", "eps"), [("sigmoid", 0.0), ("sigmoid", 0.2), ("hinge", 0.0), ("robust", 0.1)]
)
def test_dpo_matches_hand(logps, loss_type, eps):
    beta = 0.5
    per_pair = []
    for d in _deltas(logps):
        if loss_type == "sigmoid":
            per_pair.append(-(1 - eps) * _logsigmoid(beta * d) - eps * _logsigmoid(-beta * d))
        elif loss_type == "hinge":
            per_pair.append(max(0.0, 1 - beta * d))
        else:
            clean = -(1 - eps) * _logsigmoid(beta * d)
            flipped = -eps * _logsigmoid(-beta * d)
            per_pair.append((clean - flipped) / (1 - 2 * eps))
    loss, _ = dpo_loss(*logps, beta=beta, loss_type=loss_type, label_smoothing=eps)
    assert loss.item() == pytest.approx(sum(per_pair) / 4, rel=1e-12)
    loss, _ = dpo_loss(*logps, beta=beta, loss_type=loss_type, label_smoothing=eps, normalizer=10)
    assert loss.item() == pytest.approx(sum(per_pair) / 10, rel=1e-12)


def test_ipo_with_and_without_lengths(logps):
    beta = 0.1
    lengths_c = torch.tensor([4, 2, 0, 5])
    lengths_r = torch.tensor([3, 3, 1, 8])
    pc, pr, rc, rr = (t.tolist() for t in logps)
    plain, averaged = 0.0, 0.0
    for i in range(4):
        rho_c, rho_r = pc[i] - rc[i], pr[i] - rr[i]
        plain += (rho_c - rho_r - 1 / (2 * beta)) ** 2
        avg = rho_c / max(int(lengths_c[i]), 1) - rho_r / max(int(lengths_r[i]), 1)
        averaged += (avg - 1 / (2 * beta)) ** 2
    loss, _ = dpo_loss(*logps, beta=beta, loss_type="ipo")
    assert loss.item() == pytest.approx(plain / 4, rel=1e-12)
    loss, _ = dpo_loss(
        *logps, beta=beta, loss_type="ipo", chosen_lengths=lengths_c, rejected_lengths=lengths_r
    )
    assert loss.item() == pytest.approx(averaged / 4, rel=1e-12)


def test_dpo_metrics(logps):
    beta = 0.1
    _, metrics = dpo_loss(*logps, beta=beta)
    pc, pr, rc, rr = (t.tolist() for t in logps)
    chosen = [beta * (a - b) for a, b in zip(pc, rc, strict=True)]
    rejected = [beta * (a - b) for a, b in zip(pr, rr, strict=True)]
    assert metrics["rewards/chosen"].item() == pytest.approx(sum(chosen) / 4)
    assert metrics["rewards/rejected"].item() == pytest.approx(sum(rejected) / 4)
    accuracy = sum(c > r for c, r in zip(chosen, rejected, strict=True)) / 4
    assert metrics["rewards/accuracies"].item() == pytest.approx(accuracy)
    assert metrics["rewards/margins"].item() == pytest.approx((sum(chosen) - sum(rejected)) / 4)
    assert not any(v.requires_grad for v in metrics.values())


def test_dpo_argument_errors(logps):
    with pytest.raises(AutotrainError, match="loss_type"):
        dpo_loss(*logps, loss_type="kto")
    with pytest.raises(AutotrainError, match="label_smoothing"):
        dpo_loss(*logps, loss_type="robust", label_smoothing=0.5)
    with pytest.raises(AutotrainError, match="label_smoothing"):
        dpo_loss(*logps, loss_type="hinge", label_smoothing=0.1)
    with pytest.raises(AutotrainError, match="beta"):
        dpo_loss(*logps, beta=0.0)


def test_bradley_terry_matches_hand():
    chosen = torch.tensor([1.0, 0.2, -0.5], dtype=torch.float64)
    rejected = torch.tensor([0.0, 0.4, -1.5], dtype=torch.float64)
    margin = torch.tensor([0.5, 0.0, 2.0], dtype=torch.float64)
    c_list, r_list, m_list = chosen.tolist(), rejected.tolist(), margin.tolist()
    hand = [-_logsigmoid(c - r - m) for c, r, m in zip(c_list, r_list, m_list, strict=True)]
    loss = bradley_terry_loss(chosen, rejected, margin=margin)
    assert loss.item() == pytest.approx(sum(hand) / 3, rel=1e-12)
    no_margin = [-_logsigmoid(c - r) for c, r in zip(c_list, r_list, strict=True)]
    assert bradley_terry_loss(chosen, rejected, normalizer=6).item() == pytest.approx(
        sum(no_margin) / 6, rel=1e-12
    )
    centred = bradley_terry_loss(chosen, rejected, center_rewards_coefficient=0.01)
    penalty = 0.01 * sum((c + r) ** 2 for c, r in zip(c_list, r_list, strict=True)) / 3
    assert centred.item() == pytest.approx(sum(no_margin) / 3 + penalty, rel=1e-12)
