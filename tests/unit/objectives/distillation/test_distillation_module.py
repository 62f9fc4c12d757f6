"""Options, the vocabulary check, the SFT switch, and keeping the teacher out of training."""

import shutil

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models import materialize_builtin
from autotrain_pl.objectives import DistillationModule, SFTModule


def no_student_load(monkeypatch):
    import autotrain_pl.objectives.base as base

    def fail(*args, **kwargs):
        raise AssertionError("the student was loaded before the options were checked")

    monkeypatch.setattr(base, "load_model", fail)


@pytest.mark.parametrize(("options", "field"), [
    ({"temperature": 0.0}, "temperature"),
    ({"alpha": 1.5}, "alpha"),
    ({"kd_loss": "mse"}, "kd_loss"),
    ({"beta": -0.1}, "beta"),
    ({"teacher_prompt_template": "no placeholder"}, "teacher_prompt_template"),
    ({"response_source": "oracle"}, "response_source"),
    ({"teacher_cache": "ram"}, "teacher_cache"),
    ({"kd_top_k": 0}, "kd_top_k"),
    ({"teacher_sampling": {"topp": 0.9}}, "teacher_sampling"),
    ({"teacher_model": None}, "teacher_model"),
])
def test_bad_option_is_one_clear_error_before_loading(options, field, monkeypatch):
    no_student_load(monkeypatch)
    kwargs = {"teacher_model": "builtin:tiny", **options}
    with pytest.raises(AutotrainError, match=field) as error:
        DistillationModule("builtin:tiny", **kwargs)
    assert "\n" not in str(error.value)


def test_vocabulary_mismatch_fails_at_start_up(tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    other = tmp_path / "other_vocab"
    source = materialize_builtin("builtin:tiny")
    other.mkdir()
    shutil.copy(source / "config.json", other / "config.json")
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.add_tokens(["<brand_new_token>"])
    tokenizer.save_pretrained(other)
    no_student_load(monkeypatch)
    with pytest.raises(AutotrainError, match="do not share a tokenizer vocabulary"):
        DistillationModule("builtin:tiny", teacher_model=str(other))


def test_cache_defaults_top_k_and_mapping_merges():
    module = DistillationModule("builtin:tiny", teacher_model="builtin:tiny",
                                distillation={"teacher_cache": "disk", "distill_alpha": 0.5})
    assert module.distill.kd_top_k == 32 and module.distill.alpha == 0.5
    with pytest.raises(AutotrainError, match="not a distillation option"):
        DistillationModule("builtin:tiny", teacher_model="builtin:tiny",
                           distillation={"temprature": 2.0})
    with pytest.raises(AutotrainError, match="set twice"):
        DistillationModule("builtin:tiny", teacher_model="builtin:tiny", alpha=0.2,
                           distillation={"alpha": 0.4})


def test_sft_switch_from_python(aligned_batch):
    """``use_distillation`` is resolved where the options are read, in ``SFTModule.__init__``:
    the module then distils (no class switch)."""
    module = SFTModule("builtin:tiny", use_distillation=True, teacher_model="builtin:tiny",
                       distillation={"temperature": 2.0, "kd_loss": "jsd"}, learning_rate=1e-3)
    assert module.distill.temperature == 2.0 and module.distill.kd_loss == "jsd"
    assert module.teacher is not None and module.hparams.learning_rate == 1e-3
    batch = aligned_batch(1, 7, prompt=3)
    assert set(module.compute_loss(batch).metric_sums) == {"loss_kd", "loss_ce"}
    plain = SFTModule("builtin:tiny")
    assert plain.distiller is None and plain.teacher is None
    assert set(plain.compute_loss(batch).metric_sums) == set()
    with pytest.raises(AutotrainError, match="use_distillation"):
        SFTModule("builtin:tiny", teacher_model="builtin:tiny")


def test_teacher_stays_out_of_state_optimizer_and_grads():
    module = DistillationModule("builtin:tiny", teacher_model="builtin:mini", export=False)
    teacher = module.teacher.model
    teacher_params = {id(p) for p in teacher.parameters()}
    assert not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    assert not teacher_params & {id(p) for p in module.parameters()}
    assert set(module.state_dict()) == {f"model.{k}" for k in module.model.state_dict()}
    assert "teacher" not in dict(module.named_children())
    student_size = sum(p.numel() for p in module.parameters())
    assert student_size < sum(p.numel() for p in teacher.parameters())  # mini > tiny
    assert isinstance(module.teacher.model, torch.nn.Module)


def test_quantized_teacher_needs_no_lora_and_stays_close(aligned_batch):
    pytest.importorskip("bitsandbytes")
    module = DistillationModule("builtin:tiny", teacher_model="builtin:tiny", export=False,
                                teacher_quantization={"bits": 4})
    batch = aligned_batch(2, 9, prompt=5)
    output = module.compute_loss(batch)
    output.loss_sum.backward()
    assert "4bit" in type(module.teacher.model.model.layers[0].mlp.up_proj).__name__
    kd_per_token = float(output.metric_sums["loss_kd"] / output.units)
    assert 0 <= kd_per_token < 1e-2  # the same weights, 4-bit: a small divergence
    assert all(p.grad is not None for p in module.parameters())
