"""Compiled decoder layers: used by training forwards only, same results, honest fallback."""

import shutil

import pytest
import torch
from lightning.pytorch import Trainer

from autotrain_pl.data import ChatDataModule
from autotrain_pl.objectives import SFTModule
from autotrain_pl.training import compiled as compiled_module
from autotrain_pl.training.compiled import CompiledLayers, compiled_layers_for
from autotrain_pl.training.tokens import causal_lm_parts

DATA = "synthetic:arithmetic?n=64&seed=0"


def _layers(module):
    decoder, _ = causal_lm_parts(module.model)
    return decoder.layers


def test_the_stand_ins_are_active_inside_the_block_only():
    module = SFTModule("builtin:tiny", export=False)
    layers = _layers(module)
    originals = list(layers)
    keys = set(module.state_dict())
    compiled = CompiledLayers(module.model)
    with compiled.active():
        inside = list(layers)
    assert inside[0] is not originals[0] and isinstance(inside[0], torch._dynamo.OptimizedModule)
    assert inside[-1] is originals[-1]  # the trimmable last layer runs its own trimmed path
    assert list(layers) == originals and set(module.state_dict()) == keys


def _fit(tmp_path, compile: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    # SGD: weights move linearly with the gradients (Adam would magnify float noise in the
    # near-zero ones into lr-sized steps).
    module = SFTModule("builtin:tiny", export=False, compile=compile, lr_scheduler="constant",
                       optimizer="torch.optim.SGD", learning_rate=0.5)
    data = ChatDataModule(DATA, tokenizer="builtin:tiny", batch_size=8, max_length=64, seed=0,
                          valid_fraction=0.0)
    trainer = Trainer(default_root_dir=tmp_path, max_steps=3, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0)
    trainer.fit(module, datamodule=data)
    assert module._compiled_layers is None  # dropped at the end of fit
    return {name: p.detach().clone() for name, p in module.model.named_parameters()}


@pytest.mark.skipif(compiled_module.compile_unavailable_reason(torch.device("cpu")) is not None,
                    reason="no C++ compiler for torch.compile on CPU")
def test_compiled_training_matches_eager_and_really_compiles(tmp_path):
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = _fit(tmp_path / "compiled", compile=True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
    eager = _fit(tmp_path / "eager", compile=False)
    for name, weight in eager.items():
        torch.testing.assert_close(compiled[name], weight, atol=2e-5, rtol=1e-4, msg=name)


def test_without_a_compiler_the_run_warns_and_trains_eagerly(monkeypatch):
    module = SFTModule("builtin:tiny", export=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.warns(UserWarning, match=r"model\.compile=true ignored: .*C\+\+ compiler"):
        assert compiled_layers_for(module.model, torch.device("cpu")) is None
    with pytest.warns(UserWarning, match="MPS"):
        assert compiled_layers_for(module.model, torch.device("mps")) is None
