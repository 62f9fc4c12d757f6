"""Parity with TRL 1.16 on identical inputs, by calling TRL's own code.

- Generalized JSD: ``trl.experimental.gkd.GKDTrainer.generalized_jsd_loss`` (a staticmethod).
- DPO: TRL 1.16 has no standalone ``dpo_loss``; the math lives inside
  ``DPOTrainer._compute_loss(self, model, inputs, return_outputs)``. We call that method unbound on
  a stub ``self`` (trainer attributes only) and a stub model whose ``log_probs`` output is our
  per-token log-probs, with ``precompute_ref_logps=True`` so the reference comes from the inputs.
  That runs TRL's real loss code for all 15 loss types, MPO weights, f-divergences, length
  normalisation and the logged reward/log-prob metrics. ``rpo_alpha`` is checked against TRL's
  ``[X, "sft"]`` combination. (CPO, ORPO, KTO: ``test_losses_trl_cpo_orpo_kto.py``.)
- Bradley-Terry: ``RewardTrainer.compute_loss`` called the same way, with a stub reward model.

The stubs depend on TRL internals; if a TRL upgrade breaks them, read the new source and adapt.
"""

import os
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
gkd_trainer = pytest.importorskip("trl.experimental.gkd.gkd_trainer")
dpo_trainer = pytest.importorskip("trl.trainer.dpo_trainer")
reward_trainer = pytest.importorskip("trl.trainer.reward_trainer")

from autotrain_pl.losses import (  # noqa: E402
    DPO_LOSS_TYPES,
    bradley_terry_loss,
    dpo_loss,
    generalized_jsd,
    per_token_generalized_jsd,
)

trl_jsd = gkd_trainer.GKDTrainer.generalized_jsd_loss


class _Accelerator:
    device = torch.device("cpu")

    @staticmethod
    def gather(tensor):
        return tensor

    @staticmethod
    def gather_for_metrics(tensor):
        return tensor


def _trainer_stub(**attributes) -> SimpleNamespace:
    return SimpleNamespace(
        model=SimpleNamespace(training=True),
        accelerator=_Accelerator(),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
        **attributes,
    )


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_generalized_jsd_matches_trl(beta):
    gen = torch.Generator().manual_seed(3)
    student = torch.randn(2, 5, 13, generator=gen)
    teacher = torch.randn(2, 5, 13, generator=gen) * 2
    labels = torch.randint(0, 13, (2, 5), generator=gen)
    labels[0, :2] = -100
    keep = labels != -100
    kwargs = {"beta": beta, "temperature": 2.0}

    trl_per_token = trl_jsd(student, teacher, beta=beta, temperature=2.0, reduction="none").sum(-1)
    ours_per_token = per_token_generalized_jsd(student, teacher, **kwargs)
    assert torch.allclose(ours_per_token, trl_per_token, atol=1e-6)

    trl_batchmean = trl_jsd(student, teacher, labels=labels, reduction="batchmean", **kwargs)
    weights = keep.float()[keep]
    ours = generalized_jsd(student[keep], teacher[keep], weights, **kwargs)
    assert ours.item() == pytest.approx(trl_batchmean.item(), rel=1e-5)

    trl_global = trl_jsd(student, teacher, labels=labels, num_items_in_batch=20, **kwargs)
    ours_global = generalized_jsd(student[keep], teacher[keep], weights, normalizer=20, **kwargs)
    assert ours_global.item() == pytest.approx(trl_global.item(), rel=1e-5)


def _dpo_batch(gen: torch.Generator, dtype: torch.dtype, pairs: int = 4, seq_len: int = 9):
    """A TRL DPO batch (chosen rows, then rejected) and the per-token log-probs a model gives."""
    completion_mask = torch.zeros(2 * pairs, seq_len, dtype=torch.long)
    starts = torch.randint(1, seq_len - 1, (2 * pairs,), generator=gen)
    for row, start in enumerate(starts.tolist()):
        completion_mask[row, start:] = 1
    shift_mask = completion_mask[:, 1:].to(dtype)
    per_token_logps = -torch.rand(2 * pairs, seq_len - 1, generator=gen, dtype=torch.float64) * 2
    per_token_logps = (per_token_logps * shift_mask).to(dtype)  # the fused head gives 0 at -100
    ref_logps = per_token_logps.sum(1) + torch.randn(2 * pairs, generator=gen, dtype=dtype) * 3
    inputs = {
        "input_ids": torch.randint(0, 50, (2 * pairs, seq_len), generator=gen),
        "attention_mask": torch.ones(2 * pairs, seq_len, dtype=torch.long),
        "completion_mask": completion_mask,
        "ref_chosen_logps": ref_logps[:pairs],
        "ref_rejected_logps": ref_logps[pairs:],
    }
    return inputs, per_token_logps, shift_mask.sum(1)


def _trl_dpo(inputs, per_token_logps, *, loss_types, loss_weights=None, **settings):
    """TRL's ``DPOTrainer._compute_loss`` on a stub trainer: ``(loss, logged metrics)``."""

    def model(**_kwargs):
        return SimpleNamespace(
            log_probs=per_token_logps,
            entropy=torch.zeros_like(per_token_logps),
            mean_logits=torch.zeros_like(per_token_logps),
            is_top1=torch.zeros_like(per_token_logps, dtype=torch.bool),
        )

    stub = _trainer_stub(
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=True,
        f_divergence_type=settings.get("f_divergence_type", "reverse_kl"),
        f_alpha_divergence_coef=settings.get("f_alpha_divergence_coef", 0.5),
        loss_types=list(loss_types),
        loss_weights=list(loss_weights or [1.0] * len(loss_types)),
        beta=settings.get("beta", 0.1),
        label_smoothing=settings.get("label_smoothing", 0.0),
        use_weighting=False,
        args=SimpleNamespace(discopop_tau=settings.get("discopop_tau", 0.05)),
    )
    loss = dpo_trainer.DPOTrainer._compute_loss(stub, model, dict(inputs), False)
    return float(loss), {key: values[0] for key, values in stub._metrics["train"].items()}


def _ours_dpo(inputs, per_token_logps, lengths, **settings):
    seq_logps, pairs = per_token_logps.sum(1), lengths.numel() // 2
    return dpo_loss(
        seq_logps[:pairs],
        seq_logps[pairs:],
        inputs["ref_chosen_logps"],
        inputs["ref_rejected_logps"],
        chosen_lengths=lengths[:pairs],
        rejected_lengths=lengths[pairs:],
        **settings,
    )


_DPO_METRICS = (
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
)

# Every TRL 1.16 DPO loss type, with a label smoothing where the type reads it (TRL 1.16 ignores
# it for sigmoid, where ours is cDPO, so sigmoid is compared at 0 only).
_SMOOTHING = {"robust": 0.2, "exo_pair": 1e-3, "aot": 0.1, "aot_unpaired": 0.1}
_DPO_CASES = [
    pytest.param({"loss_type": t, "label_smoothing": _SMOOTHING.get(t, 0.0)}, id=t)
    for t in DPO_LOSS_TYPES
]
_DPO_CASES += [
    pytest.param({"loss_type": "robust", "label_smoothing": 0.0}, id="robust-eps0"),
    pytest.param({"loss_type": "discopop", "discopop_tau": 0.3, "beta": 0.5}, id="discopop-tau"),
    pytest.param(
        {"loss_type": ["sigmoid", "bco_pair", "sft"], "loss_weights": [0.8, 0.2, 1.0]}, id="mpo"
    ),
    pytest.param({"loss_type": ["sigmoid", "sft"], "loss_weights": [0.8, 0.2]}, id="sigmoid+sft"),
    pytest.param(
        {"loss_type": ["ipo", "apo_zero", "aot"], "loss_weights": [0.5, 1.5, -0.25]},
        id="ipo+apo_zero+aot",
    ),
]
_DPO_CASES += [
    pytest.param({"loss_type": "sigmoid", "f_divergence_type": kind}, id=f"sigmoid-{kind}")
    for kind in ("forward_kl", "js_divergence")
]
_DPO_CASES += [
    pytest.param({"loss_type": t, "f_divergence_type": "js_divergence"}, id=f"{t}-js")
    for t in ("ipo", "sigmoid_norm", "robust")
]
_DPO_CASES += [
    pytest.param(
        {
            "loss_type": "sigmoid",
            "f_divergence_type": "alpha_divergence",
            "f_alpha_divergence_coef": coef,
        },
        id=f"sigmoid-alpha{coef}",
    )
    for coef in (0.5, 1.0, 1.6)
]


@pytest.mark.parametrize("settings", _DPO_CASES)
def test_dpo_matches_trl(settings):
    # TRL's alpha-divergence clamp table has no float64 entry, so those cases run in float32.
    alpha = settings.get("f_divergence_type") == "alpha_divergence"
    dtype = torch.float32 if alpha else torch.float64
    # Seed 6: the policy and reference margins sort differently, so aot differs from sigmoid.
    inputs, per_token_logps, lengths = _dpo_batch(torch.Generator().manual_seed(6), dtype)
    settings = {"beta": 0.3, **settings}
    loss_type = settings["loss_type"]
    types = [loss_type] if isinstance(loss_type, str) else loss_type
    trl_settings = {k: v for k, v in settings.items() if k not in ("loss_type", "loss_weights")}
    trl_loss, trl_metrics = _trl_dpo(
        inputs,
        per_token_logps,
        loss_types=types,
        loss_weights=settings.get("loss_weights"),
        **trl_settings,
    )
    ours, metrics = _ours_dpo(inputs, per_token_logps, lengths, **settings)
    # TRL builds EXO's epsilon as a float32 tensor, so its log(eps) is float32-exact only.
    rel = 1e-6 if alpha or "exo_pair" in types else 1e-10
    assert ours.item() == pytest.approx(trl_loss, rel=rel)
    for key in _DPO_METRICS:
        assert metrics[key].shape == (4,)
        assert metrics[key].mean().item() == pytest.approx(trl_metrics[key], rel=rel, abs=1e-12)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "apo_down"])
def test_rpo_alpha_equals_trl_with_an_sft_term(loss_type):
    inputs, per_token_logps, lengths = _dpo_batch(torch.Generator().manual_seed(7), torch.float64)
    trl_loss, trl_metrics = _trl_dpo(
        inputs, per_token_logps, loss_types=[loss_type, "sft"], loss_weights=[1.0, 0.7], beta=0.2
    )
    ours, metrics = _ours_dpo(
        inputs, per_token_logps, lengths, loss_type=loss_type, rpo_alpha=0.7, beta=0.2
    )
    assert ours.item() == pytest.approx(trl_loss, rel=1e-10)
    for key in _DPO_METRICS:
        assert metrics[key].mean().item() == pytest.approx(trl_metrics[key], rel=1e-10)
    assert set(metrics) == {*_DPO_METRICS, f"loss_{loss_type}", "loss_sft"}


@pytest.mark.parametrize("with_margin", [False, True])
@pytest.mark.parametrize("center", [None, 0.01])
def test_bradley_terry_matches_trl(with_margin, center):
    gen = torch.Generator().manual_seed(5)
    rewards = torch.randn(8, 1, generator=gen, dtype=torch.float64)
    inputs = {"attention_mask": torch.ones(8, 4, dtype=torch.long)}
    margin = torch.rand(4, generator=gen, dtype=torch.float64)
    if with_margin:
        inputs["margin"] = margin
    stub = _trainer_stub(args=SimpleNamespace(center_rewards_coefficient=center))
    trl_loss = reward_trainer.RewardTrainer.compute_loss(
        stub, lambda **_kwargs: SimpleNamespace(logits=rewards), inputs
    )
    ours = bradley_terry_loss(
        rewards[:4, 0],
        rewards[4:, 0],
        margin=margin if with_margin else None,
        center_rewards_coefficient=center,
    )
    assert ours.item() == pytest.approx(trl_loss.item(), rel=1e-10)
