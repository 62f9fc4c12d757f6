"""A real prompt distillation, end to end, in seconds on a CPU.

1. A builtin teacher has learned to follow a system instruction (``wrap_teacher``): with it,
   answers come wrapped as ``<<answer>>``; without it, plain.
2. The student starts as a copy of that teacher (context distillation) and is distilled from the
   teacher-with-instruction on teacher-generated replies, never seeing the instruction.
3. On held-out questions, WITHOUT the instruction, the student now wraps its answers; before
   distillation it did not.
"""

from distill_testing import INSTRUCTION, quiet_trainer, wrap_rate

from autotrain_pl.data import ChatDataModule
from autotrain_pl.objectives import DistillationModule


def test_student_learns_the_instruction_it_never_sees(wrap_teacher, tmp_path):
    teacher = str(wrap_teacher.export)
    assert wrap_teacher.rate_with >= 0.8 and wrap_teacher.rate_without <= 0.2
    student = DistillationModule(
        teacher, teacher_model=teacher, teacher_system_prompt=INSTRUCTION,
        response_source="teacher", distill_max_teacher_length=10, learning_rate=2e-3,
        lr_scheduler="constant", teacher_cache_dir=str(tmp_path / "cache"), export=False,
    )
    data = ChatDataModule(str(wrap_teacher.prompts), tokenizer=teacher, batch_size=16)
    before = wrap_rate(student.model, data.tokenizer, wrap_teacher.questions)
    quiet_trainer(tmp_path, 25).fit(student, data)
    after = wrap_rate(student.model, data.tokenizer, wrap_teacher.questions)
    print(f"\nteacher wrap rate with/without instruction: {wrap_teacher.rate_with:.2f}/"
          f"{wrap_teacher.rate_without:.2f}; student without instruction: before {before:.2f}, "
          f"after distillation {after:.2f}")
    assert before <= 0.2
    assert after >= 0.8
