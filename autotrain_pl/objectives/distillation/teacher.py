"""The frozen teacher: loaded lazily, kept out of the student's modules, scored at trained tokens.

``Teacher`` is a plain object, not an ``nn.Module`` attribute of the LightningModule. So the
teacher's weights are not in the module's ``state_dict`` (checkpoints hold the student only), not
in ``parameters()`` (the optimizer, gradient clipping and the exact step normalization never see
them), and not moved or wrapped (DDP/FSDP) by the strategy: it lives on ``device`` (default: the
student's device), in eval mode, with ``requires_grad=False``, optionally 4/8-bit quantized.

It loads on first use, so a run whose teacher logits are all cached never loads it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models import QuantizationOptions, load_model, load_tokenizer, resize_embeddings
from autotrain_pl.models.devices import torch_dtype
from autotrain_pl.models.references import resolve_model_ref
from autotrain_pl.objectives.tokens import TokenSelection, forward_trained_logits

log = logging.getLogger(__name__)

TEACHER_KEYS = {"ids_key": "teacher_input_ids", "mask_key": "teacher_attention_mask",
                "weights_key": "teacher_loss_weights"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".pt")


def check_shared_vocabulary(student_ref: str, teacher_ref: str, trust_remote_code: bool = False
                            ) -> None:
    """Logit KD compares distributions id by id, so both tokenizers must map text to the same ids."""
    if student_ref == teacher_ref:
        return
    student = load_tokenizer(student_ref, trust_remote_code=trust_remote_code).get_vocab()
    teacher = load_tokenizer(teacher_ref, trust_remote_code=trust_remote_code).get_vocab()
    if student == teacher:
        return
    differ = len(set(student.items()) ^ set(teacher.items()))
    raise AutotrainError(
        f"model.teacher_model={teacher_ref!r} and model.model_name_or_path={student_ref!r} do not "
        f"share a tokenizer vocabulary ({len(teacher)} vs {len(student)} tokens, {differ} "
        "entries differ); logit distillation needs one vocabulary: pick a teacher of the "
        "student's model family"
    )


def teacher_signature(ref: str, dtype: str | None, quantization: QuantizationOptions | None) -> str:
    """A cheap fingerprint of the teacher without loading it (cache names).

    Local directories contribute the names, sizes and modification times of their weight and
    config files, so retraining into the same folder changes it; hub ids contribute the cached
    snapshot path (its commit), when there is one.
    """
    resolved = resolve_model_ref(ref)
    parts: list[str] = [ref, str(dtype), repr(quantization)]
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


class Teacher:
    """A frozen teacher model, loaded on first use.

    Args:
        ref: model reference (``builtin:<name>``, directory, export, hub id).
        dtype: weight dtype (default: the student's).
        quantization: 4/8-bit bitsandbytes loading (no LoRA needed: nothing is trained).
        device: where it runs; ``None`` = wherever the student's batches are.
        attn_implementation: as for the student.
        trust_remote_code: allow hub code (off by default).
    """

    def __init__(self, ref: str, *, dtype: str | None = "float32",
                 quantization: QuantizationOptions | None = None, device: str | None = None,
                 attn_implementation: str | None = None, trust_remote_code: bool = False) -> None:
        self.ref = ref
        self.dtype = dtype
        self.quantization = quantization
        self.device = torch.device(device) if device else None
        self.attn_implementation = attn_implementation
        self.trust_remote_code = trust_remote_code
        self.min_vocab = 0
        self.forward_calls = 0
        self._model = None
        self._load_device: torch.device | None = None
        self._signature: str | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def signature(self) -> str:
        if self._signature is None:
            self._signature = teacher_signature(self.ref, self.dtype, self.quantization)
        return self._signature

    @property
    def model(self):
        """The teacher model (loads it the first time)."""
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self):
        if self.quantization is not None:
            model = self._load_quantized()
        else:
            model = load_model(self.ref, dtype=self.dtype,
                               attn_implementation=self.attn_implementation,
                               trust_remote_code=self.trust_remote_code)
            if hasattr(model, "merge_and_unload"):  # an adapter export: fold it in, it is frozen
                model = model.merge_and_unload()
            if self.device is not None:
                model.to(self.device)
        if self.min_vocab and resize_embeddings(model, self.min_vocab):
            log.info("resized the teacher's embeddings to %d for the chat format's tokens",
                     self.min_vocab)
        model.eval()
        model.requires_grad_(False)
        log.info("loaded teacher %s (%.1fM parameters)", self.ref,
                 sum(p.numel() for p in model.parameters()) / 1e6)
        return model

    def _load_quantized(self):
        from transformers import AutoModelForCausalLM

        resolved = resolve_model_ref(self.ref)
        if resolved.is_adapter:
            raise AutotrainError("model.teacher_quantization cannot load an adapter export; "
                                 "export the teacher merged (export_mode: merged)")
        kwargs = {"quantization_config": self.quantization.to_bnb_config(),
                  "device_map": str(self.device or self._load_device or "cpu"),
                  "trust_remote_code": self.trust_remote_code}
        if self.dtype not in (None, "auto"):
            kwargs["dtype"] = torch_dtype(self.dtype)
        if self.attn_implementation:
            kwargs["attn_implementation"] = self.attn_implementation
        return AutoModelForCausalLM.from_pretrained(resolved.source, **kwargs)

    def place(self, device: torch.device) -> torch.device:
        """Move the teacher to ``device`` unless it has a fixed device; returns where it runs."""
        if self.device is not None:
            return self.device
        if self._model is None:
            self._load_device = device  # a quantized teacher loads straight onto it
        model = self.model
        current = next(model.parameters()).device
        if current != device and self.quantization is None:
            model.to(device)
        return device if self.quantization is None else current

    @torch.no_grad()
    def trained_logits(self, batch: Mapping[str, Tensor], device: torch.device
                       ) -> tuple[Tensor, TokenSelection]:
        """Teacher logits ``[N, V]`` at the trained teacher-side positions, on ``device``."""
        run_on = self.place(device)
        teacher_batch = {key: batch[key].to(run_on) for key in TEACHER_KEYS.values()}
        self.forward_calls += 1
        logits, selection = forward_trained_logits(self.model, teacher_batch, **TEACHER_KEYS)
        return logits.to(device), selection
