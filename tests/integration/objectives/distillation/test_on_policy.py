"""On-policy distillation (GKD): the student's own samples, scored by teacher and student alike."""

import pytest
from distill_testing import quiet_trainer

from autotrain_pl.data import ChatDataModule, write_jsonl
from autotrain_pl.objectives import DistillationModule
from autotrain_pl.objectives.distillation.on_policy import response_tokens


class RecordingDistillation(DistillationModule):
    """A research-style subclass: one hook overridden, the training step untouched."""

    def compute_loss(self, batch):
        if self.trainer.training:
            self.seen.append(batch)
        return super().compute_loss(batch)


@pytest.mark.parametrize(("with_replies", "lmbda", "sampled"), [
    (False, 0.0, True),   # prompt-only rows are always sampled from the student
    (True, 1.0, True),    # every batch on-policy
    (True, 0.0, False),   # never: the rows' own replies
])
def test_on_policy_batches(wrap_teacher, tmp_path, with_replies, lmbda, sampled):
    rows = [{"messages": [{"role": "user", "content": f"What is {i} + 2?"}]
             + ([{"role": "assistant", "content": str(i + 2)}] if with_replies else [])}
            for i in range(8)]
    write_jsonl(rows, tmp_path / "rows.jsonl")
    module = RecordingDistillation("builtin:tiny", teacher_model=str(wrap_teacher.export),
                                   response_source="on_policy", lmbda=lmbda,
                                   distill_max_teacher_length=6, export=False)
    module.seen = []
    data = ChatDataModule(str(tmp_path / "rows.jsonl"), tokenizer="builtin:tiny", batch_size=4)
    quiet_trainer(tmp_path, 2).fit(module, data)
    assert len(module.seen) == 2
    for batch in module.seen:
        assert bool(batch.get("on_policy")) is sampled
        student, teacher = response_tokens(batch), response_tokens(batch, "teacher_")
        assert student == teacher and all(0 < len(tokens) <= 6 for tokens in student)
        assert batch["teacher_input_ids"].shape[1] >= batch["input_ids"].shape[1]
