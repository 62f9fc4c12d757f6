"""SFTModule's loss options: what supervised data can feed is accepted, the rest refused early."""

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.objectives import DistillationModule, SFTModule


@pytest.mark.parametrize("term", ["kl", "reverse_kl", "jsd"])
def test_teacher_terms_need_distillation(term):
    with pytest.raises(AutotrainError, match=f"terms \\['{term}'\\] need teacher inputs.*"
                                             "use_distillation: true"):
        SFTModule("builtin:tiny", loss={"ce": 1.0, term: 0.1})


def test_policy_gradient_terms_are_refused_with_the_way_out():
    with pytest.raises(AutotrainError, match="need advantages.*TrainingClient"):
        SFTModule("builtin:tiny", loss={"ce": 1.0, "importance_sampling": 0.1})


def test_a_teacher_term_works_when_distilling(aligned_batch):
    """In distillation the composite's ``kl`` term reads the teacher's logits: it is 0 when the
    teacher is the student itself, and its sum is logged next to the KD term."""
    module = DistillationModule("builtin:tiny", teacher_model="builtin:tiny",
                                loss={"ce": 1.0, "kl": 0.5}, export=False)
    batch = aligned_batch(2, 8, prompt=4)
    output = module.compute_loss(batch)
    assert set(output.metric_sums) == {"loss_kd", "loss_ce", "loss_kl", "loss_sft"}
    sums = output.metric_sums
    torch.testing.assert_close(sums["loss_sft"], sums["loss_ce"] + 0.5 * sums["loss_kl"])
    assert module.derived_metrics({"loss": 9.0, "loss_ce": 1.0}) == {"ppl": pytest.approx(2.718,
                                                                                        abs=1e-3)}
    assert abs(float(output.metric_sums["loss_kl"])) < 1e-5
    assert float(output.metric_sums["loss_kd"]) < 1e-5


def test_perplexity_only_where_there_is_a_cross_entropy():
    assert SFTModule("builtin:tiny").derived_metrics({"loss": 0.0}) == {"ppl": 1.0}
    assert SFTModule("builtin:tiny", loss="focal").derived_metrics({"loss": 0.5}) == {}
    composite = SFTModule("builtin:tiny", loss={"ce": 1.0, "entropy": -0.01})
    assert composite.derived_metrics({"loss": 5.0, "loss_ce": 0.0}) == {"ppl": 1.0}
