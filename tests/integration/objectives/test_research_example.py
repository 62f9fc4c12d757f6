"""The research example overrides one hook of an objective, copies no training step, and trains."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).parents[3] / "examples" / "dynamic_fine_tuning.py"


def load_example():
    spec = importlib.util.spec_from_file_location("dynamic_fine_tuning_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dft_subclass_overrides_only_compute_loss_and_learns(tmp_path, one_torch_thread):
    example = load_example()
    own = {name for name, value in vars(example.DynamicFineTuning).items() if callable(value)}
    assert own == {"compute_loss"}
    result = example.main(["--steps", "30", "--root", str(tmp_path)])
    assert result["ppl_after"] < result["ppl_before"] / 5
