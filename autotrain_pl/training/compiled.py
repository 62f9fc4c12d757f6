"""Regional compilation: each decoder layer compiled once, used by training forwards only.

Where the time of a small-model step goes on CPU (``torch.profiler``, ``builtin:small``, batch
16): matmuls ~60%, and most of the rest in elementwise kernels (RMSNorm, rotary, SwiGLU and their
backwards) that each read and write whole activations. ``torch.compile`` fuses those; compiling
each decoder layer rather than the whole model keeps compilation short (the layers share one
graph) and leaves the parts we run ourselves (the trimmed last layer, the LM head at trained
positions) as they are. Measured on two CPU cores: 1.15-1.2x faster steps after ~20-40 s of
compilation at the first step (cached on disk for later runs).

The compiled layers stand in for the originals only inside ``CompiledLayers.active()``, which
the objectives enter for training forwards. Validation, generation and export see the original
modules: no second graph for inference, no recompilation for the KV-cache shapes of decoding,
and checkpoints keep their plain parameter names.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from autotrain_pl.training.final_layer import last_layer
from autotrain_pl.training.tokens import causal_lm_parts


def compile_unavailable_reason(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot run on ``device`` here, or None when it can."""
    if device.type == "mps":
        return "torch.compile's MPS backend is experimental"
    if device.type == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        return "torch.compile on CPU needs a C++ compiler (g++ or clang++) on PATH"
    return None


class CompiledLayers:
    """Compiled stand-ins for a causal LM's decoder layers (dynamic sequence lengths).

    The last layer stays eager when ``training.final_layer`` can trim it: the trimmed layer runs
    its submodules itself, at the trained positions only.
    """

    def __init__(self, model: nn.Module) -> None:
        decoder, _ = causal_lm_parts(model)
        layers = getattr(decoder, "layers", None)
        if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
            raise ValueError(f"{type(model).__name__} has no decoder layer list to compile")
        trimmed = last_layer(decoder)
        self._layers = layers
        self._originals = list(layers)
        # Plain list, not a ModuleList: the stand-ins must not show up in the state dict.
        self._compiled = [layer if layer is trimmed else torch.compile(layer, dynamic=True)
                          for layer in self._originals]

    @contextmanager
    def active(self) -> Iterator[None]:
        """Within the block the decoder runs the compiled layers; the originals return after."""
        swapped = [i for i, layer in enumerate(self._layers)
                   if layer is self._originals[i] and self._compiled[i] is not layer]
        for i in swapped:
            self._layers[i] = self._compiled[i]
        try:
            yield
        finally:
            for i in swapped:
                self._layers[i] = self._originals[i]


def compiled_layers_for(model: nn.Module, device: torch.device) -> CompiledLayers | None:
    """``CompiledLayers`` for ``model`` on ``device``, or None (with a warning saying why) where
    compilation cannot run: the run trains eagerly rather than failing over a speed option."""
    reason = compile_unavailable_reason(device)
    if reason is None:
        try:
            return CompiledLayers(model)
        except ValueError as error:
            reason = str(error)
    warnings.warn(f"model.compile=true ignored: {reason}; training runs uncompiled",
                  stacklevel=2)
    return None
