"""The DPO family against hand computations from the papers' formulas (TRL parity: test_losses_trl).

Covers what TRL cannot check: cDPO label smoothing, the per-pair form of the ``sft`` term,
reduction, gradient directions and every settings error.
"""

import math

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import (
    DPO_LOSS_TYPES,
    check_dpo_settings,
    chosen_token_nll_per_pair,
    dpo_loss,
    get_loss,
)


def _logsigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x > 0 else x - math.log1p(math.exp(x))


@pytest.fixture
def logps():
    policy_chosen = torch.tensor([-10.0, -12.0, -8.0, -20.0], dtype=torch.float64)
    policy_rejected = torch.tensor([-11.0, -11.5, -9.5, -19.0], dtype=torch.float64)
    ref_chosen = torch.tensor([-10.5, -12.0, -9.0, -20.5], dtype=torch.float64)
    ref_rejected = torch.tensor([-10.8, -11.0, -9.0, -19.5], dtype=torch.float64)
    return policy_chosen, policy_rejected, ref_chosen, ref_rejected


LENGTHS_C = torch.tensor([4, 2, 3, 5])
LENGTHS_R = torch.tensor([3, 3, 1, 8])


def _ratios(logps):
    pc, pr, rc, rr = (t.tolist() for t in logps)
    return [a - c for a, c in zip(pc, rc, strict=True)], [
        b - d for b, d in zip(pr, rr, strict=True)
    ]


def _deltas(logps):
    chosen, rejected = _ratios(logps)
    return [c - r for c, r in zip(chosen, rejected, strict=True)]


@pytest.mark.parametrize(
    ("loss_type", "eps"), [("sigmoid", 0.0), ("sigmoid", 0.2), ("hinge", 0.0), ("robust", 0.1)]
)
def test_dpo_matches_hand_and_reduces_by_the_normalizer(logps, loss_type, eps):
    beta = 0.5
    per_pair = []
    for d in _deltas(logps):
        if loss_type == "sigmoid":  # cDPO (Mitchell, 2023) when eps > 0
            per_pair.append(-(1 - eps) * _logsigmoid(beta * d) - eps * _logsigmoid(-beta * d))
        elif loss_type == "hinge":
            per_pair.append(max(0.0, 1 - beta * d))
        else:
            clean = -(1 - eps) * _logsigmoid(beta * d)
            flipped = -eps * _logsigmoid(-beta * d)
            per_pair.append((clean - flipped) / (1 - 2 * eps))
    kwargs = {"beta": beta, "loss_type": loss_type, "label_smoothing": eps}
    assert dpo_loss(*logps, **kwargs)[0].item() == pytest.approx(sum(per_pair) / 4, rel=1e-12)
    assert dpo_loss(*logps, normalizer=1, **kwargs)[0].item() == pytest.approx(sum(per_pair))
    assert dpo_loss(*logps, normalizer=10, **kwargs)[0].item() == pytest.approx(sum(per_pair) / 10)


def test_ipo_and_sigmoid_norm_average_over_completion_tokens(logps):
    beta = 0.1
    chosen, rejected = _ratios(logps)
    averaged = [
        c / max(int(nc), 1) - r / max(int(nr), 1)
        for c, r, nc, nr in zip(chosen, rejected, LENGTHS_C, LENGTHS_R, strict=True)
    ]
    lengths = {"chosen_lengths": LENGTHS_C, "rejected_lengths": LENGTHS_R}
    ipo, _ = dpo_loss(*logps, beta=beta, loss_type="ipo", **lengths)
    assert ipo.item() == pytest.approx(sum((a - 1 / (2 * beta)) ** 2 for a in averaged) / 4)
    norm, _ = dpo_loss(*logps, beta=beta, loss_type="sigmoid_norm", **lengths)
    assert norm.item() == pytest.approx(sum(-_logsigmoid(beta * a) for a in averaged) / 4)


def test_sft_term_per_pair_sums_to_pairs_times_the_token_mean(logps):
    chosen = logps[0]
    token_mean_nll = -chosen.sum().item() / LENGTHS_C.sum().item()
    per_pair = chosen_token_nll_per_pair(chosen, LENGTHS_C)
    assert per_pair.tolist() == pytest.approx([-c * 4 / 14 for c in chosen.tolist()])
    assert per_pair.sum().item() == pytest.approx(4 * token_mean_nll)
    lengths = {"chosen_lengths": LENGTHS_C, "rejected_lengths": LENGTHS_R}
    mean, _ = dpo_loss(*logps, loss_type="sft", **lengths)
    total, _ = dpo_loss(*logps, loss_type="sft", normalizer=1, **lengths)
    assert mean.item() == pytest.approx(token_mean_nll)
    assert total.item() == pytest.approx(4 * token_mean_nll)


def test_mpo_and_rpo_are_weighted_sums_with_per_term_metrics(logps):
    beta = 0.2
    lengths = {"chosen_lengths": LENGTHS_C, "rejected_lengths": LENGTHS_R}
    sigmoid = [-_logsigmoid(beta * d) for d in _deltas(logps)]
    nll = -logps[0].sum().item() / LENGTHS_C.sum().item()
    expected = 0.8 * sum(sigmoid) / 4 + 0.2 * nll
    mpo, metrics = dpo_loss(
        *logps, beta=beta, loss_type=["sigmoid", "sft"], loss_weights=[0.8, 0.2], **lengths
    )
    assert mpo.item() == pytest.approx(expected, rel=1e-12)
    assert metrics["loss_sigmoid"].tolist() == pytest.approx(sigmoid)
    assert metrics["loss_sft"].mean().item() == pytest.approx(nll)
    rpo, rpo_metrics = dpo_loss(*logps, beta=beta, rpo_alpha=0.5, **lengths)
    assert rpo.item() == pytest.approx(sum(sigmoid) / 4 + 0.5 * nll, rel=1e-12)
    assert {"loss_sigmoid", "loss_sft"} <= set(rpo_metrics)
    assert "loss_sigmoid" not in dpo_loss(*logps, beta=beta)[1]


def test_f_divergence_scores_match_hand(logps):
    beta, alpha = 0.3, 0.5
    chosen, rejected = _ratios(logps)
    transforms = {
        "forward_kl": lambda r: 1 - math.exp(-r),
        "js_divergence": lambda r: math.log(2) + _logsigmoid(r),
        "alpha_divergence": lambda r: (math.exp((alpha - 1) * r) - 1) / (alpha - 1),
    }
    for kind, f in transforms.items():
        hand = [-_logsigmoid(beta * (f(c) - f(r))) for c, r in zip(chosen, rejected, strict=True)]
        loss, _ = dpo_loss(*logps, beta=beta, f_divergence_type=kind)
        assert loss.item() == pytest.approx(sum(hand) / 4, rel=1e-12), kind
    plain, _ = dpo_loss(*logps, beta=beta)
    limit, _ = dpo_loss(
        *logps, beta=beta, f_divergence_type="alpha_divergence", f_alpha_divergence_coef=1.0
    )
    assert limit.item() == pytest.approx(plain.item(), rel=1e-12)


def test_metrics_are_detached_per_pair_values(logps):
    beta = 0.1
    policy = [t.clone().requires_grad_(True) for t in logps[:2]]
    _, metrics = dpo_loss(*policy, *logps[2:], beta=beta)
    chosen, rejected = _ratios(logps)
    assert metrics["rewards/chosen"].tolist() == pytest.approx([beta * c for c in chosen])
    assert metrics["rewards/rejected"].tolist() == pytest.approx([beta * r for r in rejected])
    assert metrics["rewards/accuracies"].tolist() == [
        float(c > r) for c, r in zip(chosen, rejected, strict=True)
    ]
    assert metrics["rewards/margins"].tolist() == pytest.approx(
        [beta * (c - r) for c, r in zip(chosen, rejected, strict=True)]
    )
    assert metrics["logps/chosen"].tolist() == logps[0].tolist()
    assert metrics["logps/rejected"].tolist() == logps[1].tolist()
    assert all(v.shape == (4,) and not v.requires_grad for v in metrics.values())


# Not apo_down (it lowers chosen by design) nor discopop (non-convex: near a zero margin its
# gradient pushes the margin down, as in the paper).
_RAISES_CHOSEN = (
    "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard",
    "aot", "aot_unpaired", "apo_zero", "sft", "sigmoid_norm",
)  # fmt: skip


@pytest.mark.parametrize("loss_type", _RAISES_CHOSEN)
def test_gradient_raises_chosen_and_lowers_rejected(loss_type):
    # Small log-ratios: inside every margin, so each loss still pushes.
    chosen = torch.tensor([-5.0, -6.0], dtype=torch.float64, requires_grad=True)
    rejected = torch.tensor([-5.2, -5.5], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([-5.1, -5.8], dtype=torch.float64, requires_grad=True)
    eps = {"robust": 0.1, "exo_pair": 1e-3}.get(loss_type, 0.0)
    loss, _ = dpo_loss(
        chosen,
        rejected,
        ref,
        ref,
        beta=0.1,
        loss_type=loss_type,
        label_smoothing=eps,
        chosen_lengths=torch.tensor([3, 4]),
        rejected_lengths=torch.tensor([3, 4]),
    )
    loss.backward()
    assert (chosen.grad < 0).all()
    assert ref.grad is None
    if loss_type != "sft":  # the NLL term ignores the rejected completion
        assert (rejected.grad > 0).all()


def test_length_based_terms_need_lengths(logps):
    for kwargs in ({"loss_type": "ipo"}, {"loss_type": "sft"}, {"rpo_alpha": 1.0}):
        with pytest.raises(ValueError, match="chosen_lengths"):
            dpo_loss(*logps, **kwargs)


_SETTINGS = {
    "beta": 0.1,
    "loss_type": "sigmoid",
    "loss_weights": None,
    "label_smoothing": 0.0,
    "f_divergence_type": "reverse_kl",
    "f_alpha_divergence_coef": 0.5,
    "discopop_tau": 0.05,
    "rpo_alpha": None,
}


def test_check_dpo_settings_normalizes_types_and_weights():
    assert check_dpo_settings(**_SETTINGS) == (("sigmoid",), (1.0,))
    mpo = {**_SETTINGS, "loss_type": ["sigmoid", "bco_pair", "sft"], "loss_weights": [0.8, 0.2, 1]}
    assert check_dpo_settings(**mpo) == (("sigmoid", "bco_pair", "sft"), (0.8, 0.2, 1.0))
    assert len(DPO_LOSS_TYPES) == 15


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"loss_type": "sigmod"}, r"model\.loss_type='sigmod'.*did you mean 'sigmoid'"),
        ({"loss_type": ["sigmoid", "kto"]}, r"model\.loss_type='kto'.*sigmoid, hinge"),
        ({"loss_type": []}, r"model\.loss_type is empty"),
        ({"loss_type": ["sft", "sft"]}, r"model\.loss_type lists sft more than once"),
        ({"beta": 0.0}, r"model\.beta=0\.0 must be > 0; DPO's usual value is 0\.1"),
        ({"beta": True}, r"model\.beta=True must be a finite number"),
        ({"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0]}, r"model\.loss_weights has 1"),
        ({"loss_type": "hinge", "label_smoothing": 0.1}, r"model\.label_smoothing=0\.1 has no"),
        ({"label_smoothing": -0.1}, r"model\.label_smoothing=-0\.1 must be >= 0"),
        ({"loss_type": "robust", "label_smoothing": 0.5}, r"model\.label_smoothing.*\[0, 0\.5\)"),
        ({"label_smoothing": 0.6}, r"model\.label_smoothing=0\.6.*\[0, 0\.5\] for loss_type sig"),
        ({"loss_type": "aot", "label_smoothing": 0.7}, r"model\.label_smoothing=0\.7.*aot"),
        ({"loss_type": "exo_pair"}, r"model\.label_smoothing=0\.0.*'exo_pair'.*1e-3"),
        ({"f_divergence_type": "kl"}, r"model\.f_divergence_type='kl' is not an f-divergence"),
        (
            {"loss_type": ["sigmoid", "nca_pair"], "f_divergence_type": "forward_kl"},
            r"model\.f_divergence_type='forward_kl' works only with.*nca_pair need 'reverse_kl'",
        ),
        ({"f_alpha_divergence_coef": float("nan")}, r"model\.f_alpha_divergence_coef=nan"),
        ({"discopop_tau": 0}, r"model\.discopop_tau=0 must be > 0"),
        ({"rpo_alpha": -1.0}, r"model\.rpo_alpha=-1\.0 must be >= 0"),
    ],
)
def test_settings_errors_name_the_field(change, message):
    with pytest.raises(AutotrainError, match=message) as error:
        check_dpo_settings(**{**_SETTINGS, **change})
    assert "\n" not in str(error.value)


def test_dpo_loss_checks_its_settings(logps):
    with pytest.raises(AutotrainError, match="model.beta"):
        dpo_loss(*logps, beta=-1.0)


@pytest.mark.parametrize(
    ("name", "function"),
    [
        ("dpo", "dpo_loss"),
        ("cpo", "cpo_loss"),
        ("simpo", "cpo_loss"),
        ("orpo", "orpo_loss"),
        ("kto", "kto_loss"),
        ("bradley_terry", "bradley_terry_loss"),
    ],
)
def test_get_loss_points_pair_level_names_to_their_functions(name, function):
    with pytest.raises(AutotrainError, match=rf"pair-level.*autotrain_pl\.losses\.{function}"):
        get_loss(name)
