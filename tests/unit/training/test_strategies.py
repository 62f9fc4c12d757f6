"""Scale-out combinations that cannot run are refused in one line, before a model loads."""

from pathlib import Path

import pytest
from lightning.pytorch.strategies import DDPStrategy

from autotrain_pl.cli import run_cli
from autotrain_pl.errors import AutotrainError
from autotrain_pl.training.strategies import check_strategy, is_fsdp

CONFIGS = Path(__file__).parents[3] / "configs"
FSDP_CONFIG = {"class_path": "lightning.pytorch.strategies.FSDPStrategy"}


@pytest.mark.parametrize("strategy, expected", [
    ("fsdp", True), ("fsdp_cpu_offload", True), ("ddp", False), (None, False),
    (FSDP_CONFIG, True), ({"class_path": "lightning.pytorch.strategies.DDPStrategy"}, False),
    (DDPStrategy(), False),
])
def test_is_fsdp(strategy, expected):
    assert is_fsdp(strategy) is expected


@pytest.mark.parametrize("options, match", [
    ({"accelerator": "cpu"}, "needs CUDA GPUs .* use trainer.strategy: ddp"),
    ({"accelerator": "mps"}, "needs CUDA GPUs"),
    ({"quantization": {"bits": 4}, "lora": {"r": 8}}, "QLoRA.* does not combine with FSDP"),
    ({"lora": {"r": 8}}, "use_orig_params: true"),
])
def test_fsdp_refuses_what_cannot_run(options, match):
    kwargs = {"accelerator": "cuda", "lora": None, "quantization": None, "use_orig_params": None,
              **options}
    with pytest.raises(AutotrainError, match=match):
        check_strategy("fsdp", **kwargs)


def test_what_combines_passes():
    check_strategy("fsdp", accelerator="cuda", lora={"r": 8}, quantization=None,
                   use_orig_params=True)
    check_strategy("ddp", accelerator="cpu", lora={"r": 8}, quantization={"bits": 4},
                   use_orig_params=None)


def test_fsdp_config_on_cpu_is_one_line(capsys, tmp_path):
    code = run_cli(["fit", "--config", str(CONFIGS / "fsdp.yaml"),
                    "--trainer.accelerator", "cpu", "--trainer.default_root_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("aitrain: error: trainer.strategy FSDP needs CUDA")
