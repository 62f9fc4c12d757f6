"""The one home for frozen models: a distillation teacher, a DPO/PPO/GRPO reference.

A ``FrozenModel`` is scored, never trained. It comes in two kinds:

- ``FrozenModel.copy(ref, ...)``: its own weights, loaded on first use (so a run whose values are
  all cached never loads it), in eval mode with ``requires_grad=False``, optionally 4/8-bit
  quantized and on a device of its own;
- ``FrozenModel.adapter_disabled(policy)``: the trained PEFT model itself with its adapter switched
  off, which is exactly the base it started from, with no second copy in memory.

Values computed once in advance (top-k teacher logits, reference log-probabilities) are kept by
``training.frozen_cache.FrozenValueCache`` under the model's ``signature``.

The holder is a plain object, not an ``nn.Module`` attribute of the LightningModule: a copy's
weights are not in ``state_dict`` (checkpoints hold the policy only), not in ``parameters()`` (the
optimizer, clipping and normalization never see them) and not wrapped by the strategy.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor

from autotrain_pl.models import QuantizationOptions, load_model, resize_embeddings
from autotrain_pl.models.references import resolve_model_ref
from autotrain_pl.training.tokens import TokenSelection, forward_logprobs, forward_trained_logits

log = logging.getLogger(__name__)

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".pt")


def model_signature(ref: str, *options: object) -> str:
    """A cheap fingerprint of a model without loading it (names caches).

    Local directories contribute the names, sizes and modification times of their weight and
    config files, so retraining into the same folder changes it; hub ids contribute the cached
    snapshot path (its commit), when there is one.
    """
    resolved = resolve_model_ref(ref)
    parts: list[str] = [ref, *map(repr, options)]
    source = Path(resolved.source)
    if source.is_dir():
        for path in sorted(source.iterdir()):
            if path.suffix in _WEIGHT_SUFFIXES and path.is_file():
                stat = path.stat()
                parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    else:
        try:
            from huggingface_hub import try_to_load_from_cache

            parts.append(str(try_to_load_from_cache(resolved.source, "config.json")))
        except Exception:  # noqa: BLE001 - no cache entry is fine: the id stands for itself
            pass
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


class FrozenModel:
    """A model that is scored but never trained (see module docstring for the two kinds).

    Use ``FrozenModel.copy`` or ``FrozenModel.adapter_disabled`` to build one.

    Attributes:
        min_vocab: grow the copy's embeddings to at least this many rows (tokens a chat format
            added to the shared tokenizer); set it before the first forward.
        forward_calls: forwards run so far (tests and logs read it to prove a cache works).
    """

    def __init__(self, ref: str, signature: str, *, policy=None, dtype: str | None = "float32",
                 quantization: QuantizationOptions | None = None, device: str | None = None,
                 attn_implementation: str | None = None, trust_remote_code: bool = False) -> None:
        self.ref = ref
        self.signature = signature
        self.dtype = dtype
        self.quantization = quantization
        self.device = torch.device(device) if device else None
        self.attn_implementation = attn_implementation
        self.trust_remote_code = trust_remote_code
        self.min_vocab = 0
        self.forward_calls = 0
        self._policy = policy
        self._model = None
        self._load_device: torch.device | None = None

    @classmethod
    def copy(cls, ref: str, *, dtype: str | None = "float32",
             quantization: QuantizationOptions | None = None, device: str | None = None,
             attn_implementation: str | None = None, trust_remote_code: bool = False
             ) -> FrozenModel:
        """A frozen copy of ``ref``, loaded on first use."""
        signature = model_signature(ref, dtype, quantization)
        return cls(ref, signature, dtype=dtype, quantization=quantization, device=device,
                   attn_implementation=attn_implementation, trust_remote_code=trust_remote_code)

    @classmethod
    def adapter_disabled(cls, policy, base_ref: str) -> FrozenModel:
        """The PEFT ``policy`` with its adapter off: the base it was initialised from."""
        from peft import PeftModel

        if not isinstance(policy, PeftModel):
            raise TypeError("FrozenModel.adapter_disabled needs a peft PeftModel (LoRA training)")
        return cls(base_ref, model_signature(base_ref, "adapter-disabled"), policy=policy)

    @property
    def shares_policy(self) -> bool:
        """True for the adapter-disabled kind: no weights of its own."""
        return self._policy is not None

    @property
    def loaded(self) -> bool:
        return self._model is not None or self.shares_policy

    @property
    def model(self):
        """The scoring model (a copy loads the first time)."""
        if self._policy is not None:
            return self._policy
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self):
        model = load_model(
            self.ref, dtype=self.dtype, quantization=self.quantization,
            attn_implementation=self.attn_implementation, trust_remote_code=self.trust_remote_code,
            device_map=str(self.device or self._load_device or "cpu") if self.quantization else None,
        )
        if hasattr(model, "merge_and_unload"):  # an adapter export: fold it in, it is frozen
            model = model.merge_and_unload()
        if self.device is not None and self.quantization is None:
            model.to(self.device)
        if self.min_vocab and resize_embeddings(model, self.min_vocab):
            log.info("resized the frozen model's embeddings to %d for the chat format's tokens",
                     self.min_vocab)
        model.eval()
        model.requires_grad_(False)
        log.info("loaded frozen model %s (%.1fM parameters)", self.ref,
                 sum(p.numel() for p in model.parameters()) / 1e6)
        return model

    def release(self) -> None:
        """Free a copy's weights (values it computed are cached); it reloads if used again."""
        self._model = None

    def place(self, device: torch.device) -> torch.device:
        """Move a copy to ``device`` unless it has a fixed device; returns where it runs."""
        if self._policy is not None:
            return next(self._policy.parameters()).device
        if self.device is not None:
            return self.device
        if self._model is None:
            self._load_device = device  # a quantized copy loads straight onto it
        model = self.model
        current = next(model.parameters()).device
        if current != device and self.quantization is None:
            model.to(device)
        return device if self.quantization is None else current

    @contextmanager
    def scoring(self) -> Iterator[object]:
        """The model in eval mode (and with its adapter off, for the shared kind)."""
        if self._policy is None:
            yield self.model
            return
        was_training = self._policy.training
        self._policy.eval()
        try:
            with self._policy.disable_adapter():
                yield self._policy
        finally:
            self._policy.train(was_training)

    @torch.no_grad()
    def trained_logits(self, batch: Mapping[str, Tensor], device: torch.device, **keys: str
                       ) -> tuple[Tensor, TokenSelection]:
        """Logits ``[N, V]`` at the trained positions of ``batch`` (``keys`` name its columns)."""
        run_on = self.place(device)
        inputs = {key: value.to(run_on) for key, value in batch.items()
                  if isinstance(value, Tensor)}
        self.forward_calls += 1
        with self.scoring() as model:
            logits, selection = forward_trained_logits(model, inputs, **keys)
        return logits.to(device), selection

    @torch.no_grad()
    def trained_logprobs(self, batch: Mapping[str, Tensor], device: torch.device,
                         temperature: float = 1.0, **keys: str) -> tuple[Tensor, TokenSelection]:
        """Log-probabilities ``[N]`` of the trained targets of ``batch``."""
        run_on = self.place(device)
        inputs = {key: value.to(run_on) for key, value in batch.items()
                  if isinstance(value, Tensor)}
        self.forward_calls += 1
        with self.scoring() as model:
            logprobs, selection = forward_logprobs(model, inputs, temperature, **keys)
        return logprobs.to(device), selection
