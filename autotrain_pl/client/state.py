"""``TrainingClient`` checkpoints: everything needed to continue training bit-identically."""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from autotrain_pl.errors import AutotrainError

if TYPE_CHECKING:
    from autotrain_pl.client.training_client import TrainingClient

STATE_FILE = "client_state.pt"
STATE_FORMAT = 1


def capture_rng_state() -> dict[str, Any]:
    """torch (CPU and every CUDA device), Python ``random`` and NumPy generator states."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy ships with torch's usual installs
        return state
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state["numpy"] = [kind, torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss),
                      float(cached)]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of ``capture_rng_state``; generators absent on this machine are left alone."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        states = state["cuda"]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    if "numpy" in state:
        import numpy as np

        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))


def _scaler(client: TrainingClient) -> Any:
    return getattr(client.fabric.strategy.precision, "scaler", None)


def _trained_names(client: TrainingClient) -> list[str]:
    names = {id(p): n for n, p in client.model.named_parameters()}
    return [names[id(p)] for p in client.params]


def save_client_state(client: TrainingClient, path: Path) -> Path:
    """Write ``client``'s resumable state to ``path/client_state.pt``.

    Holds the trained parameters only (the adapter under LoRA; frozen weights come back from the
    model reference), the AdamW state and last ``AdamParams``, the step count, the gradients and
    units accumulated since the last step, and the RNG states.
    """
    optimizer = client.optimizer
    state = {
        "format": STATE_FORMAT,
        "model": {n: p.detach().cpu() for n, p in zip(_trained_names(client), client.params,
                                                      strict=True)},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "adam_params": asdict(client.adam_params) if client.adam_params is not None else None,
        "step_count": client.step_count,
        "controller": client.controller.state_dict(),
        "pending_grads": [None if p.grad is None else p.grad.cpu() for p in client.params],
        "custom_grads": None if client._custom_grads is None else [
            None if g is None else g.cpu() for g in client._custom_grads],
        "scaler": _scaler(client).state_dict() if _scaler(client) is not None else None,
        "rng": capture_rng_state(),
    }
    path.mkdir(parents=True, exist_ok=True)
    torch.save(state, path / STATE_FILE)
    return path


def load_client_state(client: TrainingClient, path: Path) -> None:
    """Restore ``save_client_state`` output into a client built the same way."""
    from autotrain_pl.client.types import AdamParams

    file = path / STATE_FILE if path.is_dir() else path
    if not file.is_file():
        raise AutotrainError(f"load_state: {file} does not exist; pass a save_state directory")
    state = torch.load(file, map_location="cpu", weights_only=True)
    names = _trained_names(client)
    if state.get("format") != STATE_FORMAT or sorted(state["model"]) != sorted(names):
        raise AutotrainError(
            f"load_state: {file} holds other trained parameters; build the client with the same "
            "model reference and LoRA options it was saved from"
        )
    with torch.no_grad():
        for param, name in zip(client.params, names, strict=True):
            param.copy_(state["model"][name])
    if state["optimizer"] is not None:
        adam = AdamParams(**state["adam_params"])
        optimizer = client._ensure_optimizer(adam)
        client._apply_adam_params(optimizer, adam)
        optimizer.load_state_dict(state["optimizer"])
    client.step_count = int(state["step_count"])
    client.controller.load_state_dict(state["controller"])
    for param, grad in zip(client.params, state["pending_grads"], strict=True):
        param.grad = None if grad is None else grad.to(param.device)
    custom = state["custom_grads"]
    client._custom_grads = None if custom is None else [
        None if g is None else g.to(p.device) for g, p in zip(custom, client.params, strict=True)]
    if _scaler(client) is not None and state.get("scaler"):
        _scaler(client).load_state_dict(state["scaler"])
    restore_rng_state(state["rng"])
