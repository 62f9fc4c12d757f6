"""``train_prompt_distillation(config, base_inputs, output_dir)``: the guide's one call, on
``DistillationModule`` + ``ChatDataModule`` through a Lightning Trainer.

As in ``test_prompt_distillation``: the student starts as a copy of a teacher that wraps its
answers as ``<<answer>>`` only when its system instruction asks; the teacher writes the replies
behind that instruction, and the exported student wraps without it.
"""

from distill_testing import INSTRUCTION, wrap_rate

from autotrain_pl import PromptDistillationConfig, train_prompt_distillation
from autotrain_pl.callbacks.metrics_logger import read_metrics
from autotrain_pl.data import arithmetic_splits
from autotrain_pl.models import load_model, load_tokenizer


def test_the_student_is_trained_and_exported(wrap_teacher, tmp_path):
    teacher = str(wrap_teacher.export)
    inputs = [row["messages"][0]["content"] for row in arithmetic_splits(80, 20, digits=1)[0]]
    config = PromptDistillationConfig(
        teacher_model_name=teacher, student_model_name=teacher,
        teacher_system_prompt=INSTRUCTION, student_prompt_template="",  # the guide's bare input
        max_teacher_length=10, max_steps=25, batch_size=16, learning_rate=2e-3,
        lr_scheduler="constant", accelerator="cpu", enable_progress_bar=False,
    )
    result = train_prompt_distillation(config, base_inputs=inputs, output_dir=tmp_path / "run")
    assert result.export_dir == tmp_path / "run" / "export"
    assert (result.export_dir / "config.json").is_file() and result.steps == 25
    assert result.num_examples == 80  # every teacher reply ended within 10 tokens
    losses = [row["train/loss_step"] for row in read_metrics(result.metrics_path)
              if row.get("train/loss_step") is not None]
    assert len(losses) == 25 and sum(losses[-5:]) < sum(losses[:5])
    assert result.train_loss == result.metrics["train/loss_epoch"] > 0
    after = wrap_rate(load_model(str(result.export_dir)), load_tokenizer(str(result.export_dir)),
                      wrap_teacher.questions)
    print(f"\nstudent wrap rate without the instruction: {wrap_teacher.rate_without:.2f} before, "
          f"{after:.2f} after; loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    assert after >= 0.8
