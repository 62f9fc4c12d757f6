"""KTO against hand computations from the paper (TRL parity: test_losses_trl_cpo_orpo_kto)."""

import math

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import check_kto_settings, kto_loss


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


POLICY = [-5.0, -7.0, -6.0, -8.0]
REF = [-5.5, -6.5, -6.2, -7.0]
LABELS = [True, False, True, False]
KL_POLICY = [-9.0, -10.0, -8.0, -11.0]
KL_REF = [-9.4, -10.2, -8.1, -11.5]


def _tensors(requires_grad: bool = False):
    return (
        torch.tensor(POLICY, dtype=torch.float64, requires_grad=requires_grad),
        torch.tensor(REF, dtype=torch.float64),
        torch.tensor(LABELS),
    )


def _kl_tensors(requires_grad: bool = False):
    return (
        torch.tensor(KL_POLICY, dtype=torch.float64, requires_grad=requires_grad),
        torch.tensor(KL_REF, dtype=torch.float64),
    )


def test_kto_matches_the_paper():
    beta, w_d, w_u = 0.1, 1.5, 0.5
    # KTO, eq. 7: z0 = max(0, mean KL estimate); v = w_d s(beta(r - z0)) or w_u s(beta(z0 - r))
    z0 = max(0.0, sum(p - r for p, r in zip(KL_POLICY, KL_REF, strict=True)) / 4)
    hand = []
    for p, r, good in zip(POLICY, REF, LABELS, strict=True):
        rho = p - r
        if good:
            hand.append(w_d * (1 - _sigmoid(beta * (rho - z0))))
        else:
            hand.append(w_u * (1 - _sigmoid(beta * (z0 - rho))))
    settings = {"beta": beta, "desirable_weight": w_d, "undesirable_weight": w_u}
    loss, metrics = kto_loss(*_tensors(), *_kl_tensors(), **settings)
    assert loss.item() == pytest.approx(sum(hand) / 4, rel=1e-12)
    total, _ = kto_loss(*_tensors(), *_kl_tensors(), normalizer=1, **settings)
    assert total.item() == pytest.approx(sum(hand), rel=1e-12)
    assert metrics["kl"].tolist() == pytest.approx([z0] * 4)
    rewards = [beta * (p - r) for p, r in zip(POLICY, REF, strict=True)]
    assert metrics["rewards/chosen_sum"].tolist() == pytest.approx(
        [x if good else 0.0 for x, good in zip(rewards, LABELS, strict=True)]
    )
    assert metrics["logps/rejected_sum"].tolist() == [0.0, -7.0, 0.0, -8.0]
    assert metrics["count/chosen"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert metrics["count/rejected"].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert all(v.shape == (4,) and not v.requires_grad for v in metrics.values())


def test_apo_zero_unpaired_and_missing_kl():
    beta = 0.3
    hand = [
        1 - _sigmoid(beta * (p - r)) if good else _sigmoid(beta * (p - r))
        for p, r, good in zip(POLICY, REF, LABELS, strict=True)
    ]
    loss, metrics = kto_loss(*_tensors(), beta=beta, loss_type="apo_zero_unpaired")
    assert loss.item() == pytest.approx(sum(hand) / 4, rel=1e-12)
    assert metrics["kl"].tolist() == [0.0] * 4
    no_kl, _ = kto_loss(*_tensors(), beta=beta)  # kto with z0 = 0
    zero_kl = [
        1 - _sigmoid(beta * (p - r)) if good else 1 - _sigmoid(-beta * (p - r))
        for p, r, good in zip(POLICY, REF, LABELS, strict=True)
    ]
    assert no_kl.item() == pytest.approx(sum(zero_kl) / 4, rel=1e-12)


def test_gradient_raises_desirable_lowers_undesirable_and_skips_the_kl():
    policy, ref, labels = _tensors(requires_grad=True)
    kl_policy, kl_ref = _kl_tensors(requires_grad=True)
    loss, _ = kto_loss(policy, ref, labels, kl_policy, kl_ref)
    loss.backward()
    assert (policy.grad[labels] < 0).all()
    assert (policy.grad[~labels] > 0).all()
    assert kl_policy.grad is None  # the KL reference point is detached, as in TRL


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"loss_type": "ktoo"}, r"model\.loss_type='ktoo'.*did you mean 'kto'"),
        ({"beta": 0.0}, r"model\.beta=0\.0 must be > 0"),
        ({"desirable_weight": 0}, r"model\.desirable_weight=0 must be > 0; weigh the rarer"),
        ({"undesirable_weight": -1.0}, r"model\.undesirable_weight=-1\.0 must be > 0"),
    ],
)
def test_settings_errors_name_the_field(change, message):
    settings = {"beta": 0.1, "desirable_weight": 1.0, "undesirable_weight": 1.0}
    with pytest.raises(AutotrainError, match=message) as error:
        check_kto_settings(**{"loss_type": "kto", **settings, **change})
    assert "\n" not in str(error.value)


def test_kl_logps_come_in_pairs():
    with pytest.raises(ValueError, match="ref_kl_logps"):
        kto_loss(*_tensors(), _kl_tensors()[0])
