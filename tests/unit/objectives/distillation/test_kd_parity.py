"""The KD term, as distillation uses it (the loss registry's kl, reverse_kl and jsd), equals TRL's
GKD loss on the same logits."""

import os

import pytest
import torch

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
gkd_trainer = pytest.importorskip("trl.experimental.gkd.gkd_trainer")

from autotrain_pl.losses import weighted_cross_entropy  # noqa: E402
from autotrain_pl.objectives import DistillationModule  # noqa: E402
from autotrain_pl.objectives.distillation import DistillationSettings, Distiller  # noqa: E402
from autotrain_pl.training import TokenSelection  # noqa: E402

trl_jsd = gkd_trainer.GKDTrainer.generalized_jsd_loss
TEMPERATURE = 3.0


def logits_pair(n: int = 12, vocab: int = 50, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, vocab, generator=gen), torch.randn(n, vocab, generator=gen) * 2


def kd_sum(student, teacher_logits, kd_loss="forward_kl", beta=0.5):
    """The distiller's KD term on unit weights (its teacher never loads: logits are given)."""
    settings = DistillationSettings(teacher_model="builtin:tiny", kd_loss=kd_loss, beta=beta,
                                    temperature=TEMPERATURE)
    distiller = Distiller(settings, student_dtype="float32", attn_implementation=None,
                          trust_remote_code=False)
    n = len(student)
    selection = TokenSelection(rows=torch.zeros(n, dtype=torch.long), positions=torch.arange(n),
                               labels=torch.zeros(n, dtype=torch.long), weights=torch.ones(n),
                               batch_size=1)
    return distiller.kd_sum(student, selection, {"logits": teacher_logits})


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_jsd_term_matches_trl(beta):
    student, teacher = logits_pair()
    ours = kd_sum(student, teacher, kd_loss="jsd", beta=beta)
    theirs = trl_jsd(student, teacher, beta=beta, temperature=TEMPERATURE, reduction="sum")
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("kd_loss", "beta"), [("forward_kl", 0.0), ("reverse_kl", 1.0)])
def test_kl_choices_are_the_jsd_endpoints(kd_loss, beta):
    student, teacher = logits_pair(seed=1)
    ours = kd_sum(student, teacher, kd_loss=kd_loss)
    theirs = trl_jsd(student, teacher, beta=beta, temperature=TEMPERATURE, reduction="sum")
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_padded_teacher_vocabulary_is_sliced():
    """A teacher whose embedding has padding rows compares on the shared ids only."""
    student, teacher = logits_pair(vocab=40, seed=2)
    padded = torch.cat([teacher, torch.randn(len(teacher), 8)], dim=-1)
    a = kd_sum(student, padded)
    b = kd_sum(student, teacher)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_module_loss_is_alpha_t2_trl_plus_ce(beta, aligned_batch):
    """compute_loss = alpha * T^2 * TRL_jsd_sum + (1 - alpha) * CE_sum on a real batch."""
    torch.manual_seed(0)
    module = DistillationModule("builtin:tiny", teacher_model="builtin:tiny", kd_loss="jsd",
                                beta=beta, temperature=TEMPERATURE, alpha=0.7, export=False)
    with torch.no_grad():  # a teacher that differs from the student
        for param in module.teacher.model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    batch = aligned_batch(2, 9, prompt=5)
    ids = batch["input_ids"]
    output = module.compute_loss(batch)
    with torch.no_grad():
        student = module.model(input_ids=ids).logits[:, :-1]
        teacher = module.teacher.model(input_ids=ids).logits[:, :-1]
    labels = ids[:, 1:].masked_fill(batch["loss_weights"][:, 1:] == 0, -100)
    kd = trl_jsd(student, teacher, labels=labels, beta=beta, temperature=TEMPERATURE,
                 reduction="sum")
    keep = labels != -100
    ce = weighted_cross_entropy(student[keep], labels[keep], torch.ones(int(keep.sum())),
                                normalizer=1.0)
    torch.testing.assert_close(output.loss_sum.detach(), 0.7 * TEMPERATURE**2 * kd + 0.3 * ce,
                               rtol=1e-4, atol=1e-4)
    assert float(output.units) == float(keep.sum())
    torch.testing.assert_close(output.metric_sums["loss_kd"], kd, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(output.metric_sums["loss_ce"], ce, rtol=1e-4, atol=1e-5)
