"""Teacher replies are generated once and reused; cached teacher logits spare epoch-2 forwards."""

import os
import shutil

import lightning as L
import torch
from distill_testing import INSTRUCTION, quiet_trainer

from autotrain_pl.data import ChatDataModule
from autotrain_pl.objectives import DistillationModule


def count_generate_calls(module: DistillationModule) -> list[int]:
    """Wrap the teacher's ``generate``; returns a one-element call counter."""
    calls = [0]
    model = module.teacher.model
    original = model.generate

    def counting(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    model.generate = counting
    return calls


def count_teacher_forwards(module: DistillationModule) -> list[int]:
    """Count every teacher forward pass (all of them start at the input embeddings)."""
    calls = [0]
    module.teacher.model.get_input_embeddings().register_forward_hook(
        lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def fit(module, data_path, tokenizer, root, **trainer_options):
    data = ChatDataModule(str(data_path), tokenizer=tokenizer, batch_size=16)
    quiet_trainer(root, **trainer_options).fit(module, data)
    return data


def test_teacher_replies_are_cached_and_invalidated(wrap_teacher, tmp_path):
    export = str(wrap_teacher.export)
    cache_dir = tmp_path / "cache"

    def run(teacher=export, **options):
        module = DistillationModule(
            export, teacher_model=teacher, teacher_system_prompt=INSTRUCTION,
            response_source="teacher", distill_max_teacher_length=10,
            teacher_cache_dir=str(cache_dir), export=False, **options)
        calls = count_generate_calls(module)
        fit(module, wrap_teacher.prompts, export, tmp_path / "run", max_steps=1)
        return calls[0]

    assert run() > 0
    files = sorted(cache_dir.glob("generations-train-*.jsonl"))
    assert len(files) == 1
    assert run() == 0  # same inputs, teacher, template and settings: reused
    assert run(teacher_prompt_template="Answer the question.\n{input}") > 0  # template changed
    assert run(teacher_sampling={"temperature": 0.7, "seed": 1}) > 0  # settings changed
    copy = tmp_path / "teacher_copy"
    shutil.copytree(wrap_teacher.export, copy)
    assert run(teacher=str(copy)) > 0  # another teacher
    assert run(teacher=str(copy)) == 0
    weights = next(copy.glob("*.safetensors"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert run(teacher=str(copy)) > 0  # the teacher was retrained in place
    assert len(list(cache_dir.glob("generations-train-*.jsonl"))) == 5


class ForwardsPerEpoch(L.Callback):
    def __init__(self, counter: list[int]) -> None:
        self.counter, self.per_epoch = counter, []

    def on_train_epoch_end(self, trainer, module) -> None:
        self.per_epoch.append(self.counter[0] - sum(self.per_epoch))


def test_logit_cache_means_no_teacher_forward_after_epoch_one(wrap_teacher, tmp_path):
    export = str(wrap_teacher.export)
    options = {"teacher_model": export, "teacher_system_prompt": INSTRUCTION,
               "teacher_cache": "disk", "teacher_cache_dir": str(tmp_path / "cache"),
               "export": False}
    module = DistillationModule(export, **options)
    forwards = count_teacher_forwards(module)
    epochs = ForwardsPerEpoch(forwards)
    data = fit(module, wrap_teacher.answers, export, tmp_path / "a", max_epochs=3,
               callbacks=[epochs])
    assert epochs.per_epoch[0] == len(data.train_dataloader()) and epochs.per_epoch[1:] == [0, 0]
    (cache,) = module.distiller.logit_caches.values()
    assert cache.complete and cache.columns["values"][1] == 32

    # Cached top-k equals the live top-k: the same loss either way.
    batch = next(iter(data.train_dataloader()))
    cached_loss = module.compute_loss(batch).loss_sum
    module.distiller.logit_caches = {}
    live_loss = module.compute_loss(batch).loss_sum
    torch.testing.assert_close(cached_loss, live_loss, rtol=1e-5, atol=1e-5)

    # A new run over the same data and teacher never even loads the teacher.
    again = DistillationModule(export, **options)
    fit(again, wrap_teacher.answers, export, tmp_path / "b", max_epochs=1)
    assert not again.teacher.loaded and again.teacher.forward_calls == 0
