"""CPO/SimPO and ORPO against hand computations (TRL parity: test_losses_trl_cpo_orpo_kto)."""

import math

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import check_reference_free_settings, cpo_loss, orpo_loss


def _logsigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x > 0 else x - math.log1p(math.exp(x))


CHOSEN = [-6.0, -9.0, -4.5]
REJECTED = [-7.5, -8.0, -9.0]
N_CHOSEN = [4, 6, 3]
N_REJECTED = [5, 4, 6]


def _inputs(requires_grad: bool = False):
    tensors = [
        torch.tensor(CHOSEN, dtype=torch.float64, requires_grad=requires_grad),
        torch.tensor(REJECTED, dtype=torch.float64, requires_grad=requires_grad),
        torch.tensor(N_CHOSEN),
        torch.tensor(N_REJECTED),
    ]
    return tensors


def _averages():
    chosen = [c / n for c, n in zip(CHOSEN, N_CHOSEN, strict=True)]
    return chosen, [r / n for r, n in zip(REJECTED, N_REJECTED, strict=True)]


def test_simpo_matches_the_paper():
    beta, gamma = 2.0, 0.5
    chosen, rejected = _averages()
    # SimPO, eq. 6: -log sigmoid(beta/|y_w| log pi(y_w) - beta/|y_l| log pi(y_l) - gamma)
    hand = [
        -_logsigmoid(beta * c - beta * r - gamma) for c, r in zip(chosen, rejected, strict=True)
    ]
    loss, metrics = cpo_loss(
        *_inputs(), loss_type="simpo", beta=beta, simpo_gamma=gamma, cpo_alpha=0
    )
    assert loss.item() == pytest.approx(sum(hand) / 3, rel=1e-12)
    assert metrics["rewards/chosen"].tolist() == pytest.approx([beta * c for c in chosen])
    assert metrics["logps/rejected"].tolist() == pytest.approx(rejected)
    assert "nll_loss" not in metrics
    total, _ = cpo_loss(
        *_inputs(), loss_type="simpo", beta=beta, simpo_gamma=gamma, cpo_alpha=0, normalizer=1
    )
    assert total.item() == pytest.approx(sum(hand), rel=1e-12)


def test_cpo_adds_the_chosen_token_nll():
    beta, alpha, eps = 0.1, 1.0, 0.1
    sigmoid = [
        -(1 - eps) * _logsigmoid(beta * (c - r)) - eps * _logsigmoid(-beta * (c - r))
        for c, r in zip(CHOSEN, REJECTED, strict=True)
    ]
    nll = -sum(CHOSEN) / sum(N_CHOSEN)
    loss, metrics = cpo_loss(*_inputs(), beta=beta, label_smoothing=eps, cpo_alpha=alpha)
    assert loss.item() == pytest.approx(sum(sigmoid) / 3 + alpha * nll, rel=1e-12)
    assert metrics["nll_loss"].mean().item() == pytest.approx(nll)
    assert metrics["logps/chosen"].tolist() == CHOSEN  # sums: only simpo and ipo average


def _log1mexp(x: float) -> float:
    return math.log(-math.expm1(x))


@pytest.mark.parametrize("with_prompt", [False, True])
def test_orpo_matches_the_paper(with_prompt):
    beta = 0.2
    chosen, rejected = _averages()
    # ORPO, eq. 4-7: log odds(y) = log p - log(1 - p) with p the length-averaged likelihood
    log_odds = [
        (c - r) - (_log1mexp(c) - _log1mexp(r)) for c, r in zip(chosen, rejected, strict=True)
    ]
    prompt = {}
    nll = -sum(CHOSEN) / sum(N_CHOSEN)
    if with_prompt:
        prompt = {"prompt_logps": torch.tensor([-3.0, -1.0, -2.0]), "prompt_lengths": [2, 1, 2]}
        nll = -(sum(CHOSEN) - 6.0) / (sum(N_CHOSEN) + 5)
        prompt["prompt_lengths"] = torch.tensor(prompt["prompt_lengths"])
    expected = nll - beta * sum(_logsigmoid(x) for x in log_odds) / 3
    loss, metrics = orpo_loss(*_inputs(), beta=beta, **prompt)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert metrics["log_odds_chosen"].tolist() == pytest.approx(log_odds)
    assert metrics["log_odds_ratio"].tolist() == pytest.approx([_logsigmoid(x) for x in log_odds])
    assert metrics["nll_loss"].mean().item() == pytest.approx(nll)
    assert all(v.shape == (3,) and not v.requires_grad for v in metrics.values())


def test_orpo_log_odds_stay_finite_near_certainty():
    chosen = torch.tensor([-1e-9, -50.0], dtype=torch.float64)
    rejected = torch.tensor([-30.0, -1e-6], dtype=torch.float64)
    ones = torch.ones(2)
    loss, metrics = orpo_loss(chosen, rejected, ones, ones)
    assert torch.isfinite(loss)
    assert torch.isfinite(metrics["log_odds_chosen"]).all()


@pytest.mark.parametrize(
    "call",
    [
        lambda x: cpo_loss(*x, loss_type="simpo", beta=2.0, cpo_alpha=0.0),
        lambda x: cpo_loss(*x),
        lambda x: cpo_loss(*x, loss_type="ipo"),
        lambda x: orpo_loss(*x),
    ],
    ids=["simpo", "cpo", "ipo", "orpo"],
)
def test_gradient_raises_chosen_and_lowers_rejected(call):
    inputs = _inputs(requires_grad=True)
    loss, _ = call(inputs)
    loss.backward()
    assert (inputs[0].grad < 0).all()
    assert (inputs[1].grad > 0).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"loss_type": "simpoo"}, r"model\.loss_type='simpoo'.*did you mean 'simpo'"),
        ({"beta": 0}, r"model\.beta=0 must be > 0; TRL's default is 0\.1"),
        ({"simpo_gamma": -0.1}, r"model\.simpo_gamma=-0\.1 must be >= 0"),
        ({"cpo_alpha": -1}, r"model\.cpo_alpha=-1 must be >= 0"),
        ({"loss_type": "hinge", "label_smoothing": 0.1}, r"model\.label_smoothing=0\.1 has no"),
        ({"label_smoothing": 0.6}, r"model\.label_smoothing=0\.6 must lie in \[0, 0\.5\]"),
    ],
)
def test_settings_errors_name_the_field(change, message):
    settings = {"beta": 0.1, **change}
    with pytest.raises(AutotrainError, match=message) as error:
        check_reference_free_settings(**settings)
    assert "\n" not in str(error.value)


def test_orpo_argument_errors():
    with pytest.raises(AutotrainError, match=r"model\.beta=-0\.1"):
        orpo_loss(*_inputs(), beta=-0.1)
    with pytest.raises(ValueError, match="prompt_lengths"):
        orpo_loss(*_inputs(), prompt_logps=torch.zeros(3))
