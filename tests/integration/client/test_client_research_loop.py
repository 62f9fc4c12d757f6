"""The TrainingClient research-loop example runs and its loss falls."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).parents[3] / "examples" / "research_loop.py"


def test_research_loop_example_loss_falls(capsys):
    spec = importlib.util.spec_from_file_location("research_loop_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    losses = module.main(steps=8, batch_size=16, log_every=4)
    assert len(losses) == 8
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 1.0
    out = capsys.readouterr().out
    assert "step    0" in out and "held-out loss" in out
