"""``Distiller``: everything distillation adds to supervised fine-tuning.

``SFTModule(use_distillation=True, ...)`` (and ``DistillationModule``, the same thing with every
option spelled out) holds one. It owns the frozen teacher (``training.FrozenModel``), the
teacher/student data encoding, the teacher's logits at the trained tokens (live or from the
``training.FrozenValueCache`` of top-k logits), on-policy batches and teacher-written replies.

Loss per micro-batch, summed over trained response tokens (the step normalizes):
``alpha * T**2 * KD(teacher || student at temperature T) + (1 - alpha) * CE``. ``T**2`` keeps the
KD gradient scale independent of T (Hinton et al., 2015). KD is the loss registry's ``kl``,
``reverse_kl`` or ``jsd`` term (``kd_loss``: forward_kl, reverse_kl, jsd); CE is the SFT loss. On
on-policy batches CE is left out: the student's own samples are not targets.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from autotrain_pl.data import resolve_pad_token_id
from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import LossInputs, get_loss
from autotrain_pl.models import load_tokenizer
from autotrain_pl.objectives.distillation.data import DistillationEncoding
from autotrain_pl.objectives.distillation.generations import (
    load_generations,
    save_generations,
    trained_token_counts,
)
from autotrain_pl.objectives.distillation.on_policy import sample_on_policy
from autotrain_pl.objectives.distillation.settings import DistillationSettings
from autotrain_pl.rendering.messages import Message
from autotrain_pl.training import FrozenModel, FrozenValueCache, TokenSelection, rank_zero_first

log = logging.getLogger(__name__)

GENERATION_BATCH_SIZE = 32
TEACHER_KEYS = {"ids_key": "teacher_input_ids", "mask_key": "teacher_attention_mask",
                "weights_key": "teacher_loss_weights"}
#: ``kd_loss`` option -> the loss registry's name for it.
KD_TERMS = {"forward_kl": "kl", "reverse_kl": "reverse_kl", "jsd": "jsd"}


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


def teacher_inputs(logits: Tensor, teacher: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``LossInputs`` fields for the teacher, full logits cut to the student's vocabulary width
    (padded embedding rows are never real tokens; both are at least the tokenizer's size)."""
    if "logits" in teacher:
        width = min(logits.shape[-1], teacher["logits"].shape[-1])
        return {"logits": logits[..., :width], "teacher_logits": teacher["logits"][..., :width]}
    return {"logits": logits, "teacher_topk_values": teacher["values"],
            "teacher_topk_indices": teacher["indices"]}


class Distiller:
    """The teacher side of a distilling ``SFTModule`` (see module docstring)."""

    def __init__(self, settings: DistillationSettings, *, student_dtype: str,
                 attn_implementation: str | None, trust_remote_code: bool) -> None:
        self.settings = settings
        self.teacher = FrozenModel.copy(
            settings.teacher_model, dtype=settings.teacher_dtype or student_dtype,
            quantization=settings.teacher_quantization, device=settings.teacher_device,
            attn_implementation=attn_implementation, trust_remote_code=trust_remote_code,
        )
        self.kd_term = get_loss(KD_TERMS[settings.kd_loss])
        self.logit_caches: dict[str, FrozenValueCache] = {}
        self._encoding: DistillationEncoding | None = None
        self._on_policy_rng = random.Random(0)

    # -- data ---------------------------------------------------------------------------------
    def encoding(self, responder: Callable) -> DistillationEncoding:
        """The teacher/student encoding of the data (one object, so the data encodes once)."""
        source = self.settings.response_source
        encoding = DistillationEncoding(
            self.settings.prompts,
            responder=responder if source in ("teacher", "auto") else None,
            allow_prompt_only=source == "on_policy",
            teacher_when_no_replies=source == "auto",
        )
        if encoding != self._encoding:
            self._encoding = encoding
        return self._encoding

    def cache_dir(self, default_root_dir: str | None) -> Path:
        if self.settings.teacher_cache_dir:
            return Path(self.settings.teacher_cache_dir).expanduser()
        if default_root_dir is not None:
            return Path(default_root_dir) / "teacher_cache"
        from autotrain_pl.models.builtin import cache_root

        return cache_root() / "distill"

    def open_logit_caches(self, trainer) -> None:
        """One top-k cache per encoded data source, named by its rows, the teacher and k."""
        if self.settings.teacher_cache != "disk" or self._encoding is None:
            return
        k = self.settings.kd_top_k
        for fingerprint, dataset in self._encoding.encoded.items():
            if fingerprint in self.logit_caches:
                continue
            key = hashlib.sha256(f"{fingerprint}|{self.teacher.signature}|{k}".encode())
            directory = self.cache_dir(trainer.default_root_dir) / f"logits-{key.hexdigest()[:16]}"
            counts = trained_token_counts(dataset)
            cache = rank_zero_first(trainer, lambda d=directory, c=counts: FrozenValueCache(
                d, c, {"values": ("float32", k), "indices": ("int32", k)}, trainer.global_rank))
            self.logit_caches[fingerprint] = cache
            log.info("teacher logit cache: %s", cache.describe())

    # -- teacher replies (response_source: teacher) -----------------------------------------
    def generate_teacher_responses(self, trainer, prompts: list[list[Message]], split: str,
                                   renderer) -> list[Message | None]:
        """Teacher replies to its own prompts, generated once and cached as JSONL.

        The cache is keyed by the teacher prompts' token ids (inputs, template, chat format),
        the teacher and the sampling settings; failed (cut off) and empty replies are dropped.
        """
        prompt_ids = [renderer.build_generation_prompt(p) for p in prompts]
        sampling = self.settings.sampling("teacher")
        settings = {"teacher_model": self.settings.teacher_model,
                    "teacher_signature": self.teacher.signature,
                    "sampling": asdict(sampling), "chat_format": renderer.name,
                    "teacher_prompt_template": self.settings.teacher_prompt_template,
                    "teacher_system_prompt": self.settings.teacher_system_prompt}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
        digest.update(json.dumps(prompt_ids).encode())
        fingerprint = digest.hexdigest()
        path = self.cache_dir(trainer.default_root_dir) / (
            f"generations-{split}-{fingerprint[:16]}.jsonl")

        def load_or_generate() -> list[dict]:
            rows = load_generations(path, fingerprint, len(prompt_ids))
            if rows is None:
                rows = self._generate(prompt_ids, sampling, renderer,
                                      trainer.strategy.root_device)
                save_generations(path, {"fingerprint": fingerprint, "count": len(rows),
                                        **settings}, rows)
            else:
                log.info("teacher replies (%s): reusing %s", split, path)
            return rows

        rows = rank_zero_first(trainer, load_or_generate)
        replies = [Message("assistant", r["content"]) if r["content"] else None for r in rows]
        failed = sum(r is None for r in replies)
        if failed:
            log.warning("teacher replies (%s): dropped %d of %d (cut off at "
                        "distill_max_teacher_length=%d or empty)", split, failed, len(replies),
                        self.settings.distill_max_teacher_length)
        return replies

    def _generate(self, prompt_ids: list[list[int]], sampling, renderer,
                  device: torch.device) -> list[dict]:
        from autotrain_pl.generation import MessageCompleter

        self.teacher.min_vocab = max(self.teacher.min_vocab, len(renderer.tokenizer))
        self.teacher.place(device)
        completer = MessageCompleter(self.teacher.model, renderer.tokenizer, renderer)
        completions = completer.token_completer.batch_complete(
            prompt_ids, sampling, batch_size=GENERATION_BATCH_SIZE)
        rows = []
        for completion in completions:
            content = None
            if completion.stop_reason != "length":
                content = completer.to_message(completion).content.strip() or None
            rows.append({"content": content, "stop_reason": completion.stop_reason,
                         "num_tokens": completion.num_tokens})
        return rows

    # -- batches ------------------------------------------------------------------------------
    def maybe_on_policy(self, module, batch: Mapping[str, Any]) -> Mapping[str, Any]:
        """With ``response_source: on_policy``, swap in student samples for a share ``lmbda``
        of batches (and always for rows without a reply), before the loss sees the batch."""
        if self.settings.response_source != "on_policy" or "prompt_length" not in batch:
            return batch
        missing = not bool(batch["has_response"].all())
        if missing or self._on_policy_rng.random() < self.settings.lmbda:
            batch = sample_on_policy(module.model, module.tokenizer, module.renderer, batch,
                                     self.settings.sampling("student"),
                                     resolve_pad_token_id(module.tokenizer))
        return batch

    def teacher_targets(self, batch: Mapping[str, Any], selection: TokenSelection,
                        vocab_width: int) -> dict[str, Tensor]:
        """The teacher's view of the selected tokens: cached top-k, or a live forward.

        Returns ``{"logits"}`` (full) or ``{"values", "indices"}`` (top-k), on the student's
        device, one row per selected token.
        """
        if "teacher_input_ids" not in batch:
            raise AutotrainError("distillation batches need teacher_input_ids, "
                                 "teacher_attention_mask and teacher_loss_weights; use a "
                                 "ChatDataModule (or DistillationCollator) for the data")
        device = selection.labels.device
        k = self.settings.kd_top_k
        cache = None
        if "example_ids" in batch and not batch.get("on_policy"):
            cache = self.logit_caches.get(batch.get("cache_key"))
        if cache is not None:
            hit = cache.lookup(batch["example_ids"])
            if hit is not None:
                return {"values": hit["values"].to(device),
                        "indices": hit["indices"].to(device).long()}
        teacher_batch = {key: batch[key] for key in TEACHER_KEYS.values()}
        logits, teacher_selection = self.teacher.trained_logits(teacher_batch, device,
                                                                **TEACHER_KEYS)
        if not torch.equal(teacher_selection.labels.to(device), selection.labels):
            raise RuntimeError("teacher and student response tokens are not aligned; the batch "
                               "must carry the same trained tokens on both sides")
        if k is None:
            return {"logits": logits}
        values, indices = torch.topk(logits[..., :vocab_width].float(),
                                     min(k, vocab_width), dim=-1)
        if cache is not None:
            cache.store(batch["example_ids"], teacher_selection.rows,
                        {"values": values, "indices": indices})
        return {"values": values, "indices": indices}

    def kd_sum(self, logits: Tensor, selection: TokenSelection, teacher: Mapping[str, Tensor]
               ) -> Tensor:
        """``sum_i w_i * D(teacher_i || student_i)`` at temperature T (no ``T**2``)."""
        inputs = LossInputs(labels=selection.labels, loss_weights=selection.weights,
                            normalizer=1.0, **teacher_inputs(logits, teacher))
        params: dict[str, Any] = {"temperature": self.settings.temperature}
        if self.settings.kd_loss == "jsd":
            params["beta"] = self.settings.beta
        return self.kd_term(inputs, **params)

    # -- cache bookkeeping --------------------------------------------------------------------
    def flush_caches(self) -> None:
        for cache in self.logit_caches.values():
            cache.flush()

    def share_caches(self, trainer) -> None:
        """After an epoch: every rank has flushed, so each reads what the others filled."""
        self.flush_caches()
        if self.logit_caches and trainer.world_size > 1:
            trainer.strategy.barrier()
            for cache in self.logit_caches.values():
                cache.refresh()

    def epoch_metrics(self) -> dict[str, float]:
        metrics = {"teacher_forwards": float(self.teacher.forward_calls)}
        if self.logit_caches:
            disk = sum(c.disk_bytes for c in self.logit_caches.values())
            metrics["teacher_cache_disk_mib"] = disk / 2**20
        return metrics
