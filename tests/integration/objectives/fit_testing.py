"""Shared builders of the objective fit tests."""

from pathlib import Path

import lightning as L


def make_trainer(root: Path, max_steps: int, **kwargs) -> L.Trainer:
    """A quiet CPU trainer for a short fit: no logger, checkpoints, progress bar or sanity check."""
    defaults = dict(accelerator="cpu", max_steps=max_steps, logger=False, enable_progress_bar=False,
                    enable_model_summary=False, enable_checkpointing=False,
                    default_root_dir=str(root), num_sanity_val_steps=0)
    defaults.update(kwargs)
    return L.Trainer(**defaults)
