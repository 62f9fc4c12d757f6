"""Parity with TRL 1.16 on identical inputs, by calling TRL's own code.

- Generalized JSD: ``trl.experimental.gkd.GKDTrainer.generalized_jsd_loss`` (a staticmethod).
- DPO: TRL 1.16 has no standalone ``dpo_loss``; the math lives inside
  ``DPOTrainer._compute_loss(self, model, inputs, return_outputs)``. We call that method unbound on
  a stub ``self`` (trainer attributes only) and a stub model whose ``log_probs`` output is our
  per-token log-probs, with ``precompute_ref_logps=True`` so the reference comes from the inputs.
  That runs TRL's real loss code, IPO length normalisation and reward metrics included.
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


def _dpo_batch(gen: torch.Generator, pairs: int = 3, seq_len: int = 8):
    completion_mask = torch.zeros(2 * pairs, seq_len, dtype=torch.long)
    for row, start in enumerate([2, 3, 5, 1, 4, 6][: 2 * pairs]):
        completion_mask[row, start:] = 1
    shift_mask = completion_mask[:, 1:].to(torch.float64)
    per_token_logps = -torch.rand(2 * pairs, seq_len - 1, generator=gen, dtype=torch.float64) * 3
    per_token_logps = per_token_logps * shift_mask  # the fused head gives 0 at label -100
    ref_logps = -torch.rand(2 * pairs, generator=gen, dtype=torch.float64) * 10 - 5
    inputs = {
        "input_ids": torch.randint(0, 50, (2 * pairs, seq_len), generator=gen),
        "attention_mask": torch.ones(2 * pairs, seq_len, dtype=torch.long),
        "completion_mask": completion_mask,
        "ref_chosen_logps": ref_logps[:pairs],
        "ref_rejected_logps": ref_logps[pairs:],
    }
    return inputs, per_token_logps, shift_mask.sum(1)


@pytest.mark.parametrize(
    ("loss_type", "label_smoothing"),
    [("sigmoid", 0.0), ("ipo", 0.0), ("hinge", 0.0), ("robust", 0.0), ("robust", 0.2)],
)
def test_dpo_matches_trl(loss_type, label_smoothing):
    gen = torch.Generator().manual_seed(4)
    inputs, per_token_logps, lengths = _dpo_batch(gen)
    rows = per_token_logps.shape[0]

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
        f_divergence_type="reverse_kl",
        loss_types=[loss_type],
        loss_weights=[1.0],
        beta=0.3,
        label_smoothing=label_smoothing,
        use_weighting=False,
        args=SimpleNamespace(),
    )
    trl_loss = dpo_trainer.DPOTrainer._compute_loss(stub, model, dict(inputs), False)

    seq_logps = per_token_logps.sum(1)
    ours, metrics = dpo_loss(
        seq_logps[: rows // 2],
        seq_logps[rows // 2 :],
        inputs["ref_chosen_logps"],
        inputs["ref_rejected_logps"],
        beta=0.3,
        loss_type=loss_type,
        label_smoothing=label_smoothing,
        chosen_lengths=lengths[: rows // 2],
        rejected_lengths=lengths[rows // 2 :],
    )
    assert ours.item() == pytest.approx(float(trl_loss), rel=1e-10)
    for key in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"):
        assert metrics[key].item() == pytest.approx(stub._metrics["train"][key][0], rel=1e-10)


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
