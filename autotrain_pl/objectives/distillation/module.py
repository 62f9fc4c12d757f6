"""``DistillationModule``: train a student on a frozen teacher's next-token distributions.

Loss per micro-batch (summed over trained response tokens; the base class normalizes exactly per
optimizer step): ``alpha * T**2 * KD(teacher || student at temperature T) + (1 - alpha) * CE``.
``T**2`` keeps the KD gradient scale independent of T (Hinton et al., 2015). CE is the SFT loss
(``loss``/``label_smoothing`` of ``SFTModule`` apply); on on-policy batches it is left out, since
the student's own samples are not targets.

Data flow: ``setup`` upgrades the data module to a :class:`DistillationDataModule` and hands it
the prompt templates, so each batch carries student rows and teacher rows with the same response
tokens (see ``distillation.data``). The teacher's logits at those tokens come from a live forward
on ``teacher_*`` keys, or from the teacher-logit cache (``distillation.teacher_cache``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from autotrain_pl.data import ChatDataModule, resolve_pad_token_id
from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import LossInputs
from autotrain_pl.models import QuantizationOptions
from autotrain_pl.objectives.base import ObjectiveModule
from autotrain_pl.objectives.distillation.data import (
    DistillationDataModule,
    DistillationDataSpec,
)
from autotrain_pl.objectives.distillation.kd import (
    TeacherTargets,
    kd_divergence_sum,
    teacher_topk,
)
from autotrain_pl.objectives.distillation.on_policy import sample_on_policy
from autotrain_pl.objectives.distillation.settings import DistillationSettings, merge_options
from autotrain_pl.objectives.distillation.teacher import Teacher, check_shared_vocabulary
from autotrain_pl.objectives.distillation.teacher_cache import (
    TeacherLogitCache,
    load_generations,
    save_generations,
    trained_token_counts,
)
from autotrain_pl.objectives.sft import SFTModule
from autotrain_pl.objectives.tokens import TokenSelection
from autotrain_pl.rendering.messages import Message

log = logging.getLogger(__name__)

GENERATION_BATCH_SIZE = 32


def _student_options(args: tuple, options: dict[str, Any]) -> tuple[str, bool]:
    """The student reference and ``trust_remote_code``, before the student loads."""
    params = inspect.signature(ObjectiveModule.__init__).parameters
    ref = args[0] if args else options.get("model_name_or_path",
                                           params["model_name_or_path"].default)
    return ref, bool(options.get("trust_remote_code", False))


class DistillationModule(SFTModule):
    """Knowledge and prompt distillation from a frozen teacher into the trained student.

    Args:
        teacher_model: teacher reference; must share the student's tokenizer vocabulary.
        temperature: softmax temperature T of both distributions in the KD term.
        alpha: weight of the KD term; ``1 - alpha`` weights CE on the response.
        kd_loss: ``forward_kl`` KL(teacher||student), ``reverse_kl``, or ``jsd`` (with ``beta``).
        beta: generalized JSD mixture weight (0: forward KL, 1: reverse KL), as in TRL's GKD.
        teacher_prompt_template: the teacher's user message; ``{input}`` is the row's message.
        student_prompt_template: the student's user message (default: the input alone).
        teacher_system_prompt: the teacher's system message (``None``: the data's; ``""``: none).
        student_system_prompt: the student's system message, same rules.
        response_source: ``dataset`` (the rows' replies), ``teacher`` (generated once by the
            teacher behind its template, cached as JSONL) or ``on_policy`` (a share ``lmbda`` of
            batches is sampled from the current student; the rest use the rows' replies).
        lmbda: share of on-policy batches for ``response_source: on_policy``.
        distill_max_teacher_length: most tokens per generated reply (teacher or student).
        teacher_sampling: ``SamplingConfig`` keys for teacher replies (default greedy).
        student_sampling: ``SamplingConfig`` keys for on-policy samples (default temperature 1).
        kd_top_k: keep only the teacher's top-k logits, renormalized (``kd_loss_topk``).
        teacher_cache: ``none`` or ``disk``: cache the teacher's top-k logits (k defaults to 32)
            so epochs after the first, and later runs, run no teacher forward.
        teacher_cache_dir: cache folder (default ``<default_root_dir>/teacher_cache``).
        teacher_dtype: teacher weight dtype (default: the student's ``dtype``).
        teacher_device: run the teacher on its own device (e.g. ``cuda:1``); default: the
            student's.
        teacher_quantization: load the teacher in 4/8 bits (bitsandbytes).
        use_distillation: always true here; the switch that turns ``SFTModule`` into this.
        distillation: the same options as a mapping (what the SFT switch passes); seed names
            ``distill_temperature`` and ``distill_alpha`` are accepted.
        **kwargs: ``SFTModule`` and ``ObjectiveModule`` options for the student.

    The teacher is held by a plain :class:`Teacher` object, not as a submodule: it is not in
    ``state_dict`` or checkpoints, not in the optimizer, and not moved or wrapped by the strategy.
    """

    def __init__(
        self,
        *args: Any,
        teacher_model: str | None = None,
        temperature: float = 3.0,
        alpha: float = 0.7,
        kd_loss: str = "forward_kl",
        beta: float = 0.5,
        teacher_prompt_template: str = "{input}",
        student_prompt_template: str = "{input}",
        teacher_system_prompt: str | None = None,
        student_system_prompt: str | None = None,
        response_source: str = "dataset",
        lmbda: float = 0.5,
        distill_max_teacher_length: int = 256,
        teacher_sampling: dict[str, Any] | None = None,
        student_sampling: dict[str, Any] | None = None,
        kd_top_k: int | None = None,
        teacher_cache: str = "none",
        teacher_cache_dir: str | None = None,
        teacher_dtype: str | None = None,
        teacher_device: str | None = None,
        teacher_quantization: QuantizationOptions | None = None,
        use_distillation: bool = True,
        distillation: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not use_distillation:
            raise AutotrainError("model.use_distillation=false with DistillationModule; use "
                                 "SFTModule for plain fine-tuning")
        signature = inspect.signature(DistillationModule.__init__).parameters
        explicit = {name: value for name, value in locals().items()
                    if name in signature and name not in ("self", "args", "kwargs",
                                                          "use_distillation", "distillation")}
        defaults = {name: signature[name].default for name in explicit}
        settings = DistillationSettings(**merge_options(explicit, defaults, distillation))
        student_ref, trust = _student_options(args, kwargs)
        check_shared_vocabulary(student_ref, settings.teacher_model, trust)
        super().__init__(*args, **kwargs)
        self.distill = settings
        self.teacher = Teacher(
            settings.teacher_model, dtype=settings.teacher_dtype or self.hparams.dtype,
            quantization=settings.teacher_quantization, device=settings.teacher_device,
            attn_implementation=self.hparams.attn_implementation,
            trust_remote_code=self.hparams.trust_remote_code,
        )
        self.logit_caches: dict[str, TeacherLogitCache] = {}
        self._on_policy_rng = random.Random(0)

    # -- data hand-over -----------------------------------------------------------------------
    @SFTModule.trainer.setter
    def trainer(self, trainer) -> None:
        """Hand the prompts to the data module as soon as the trainer attaches both.

        Lightning sets ``module.trainer`` after attaching the data module and before any
        ``setup``, so the data is encoded once, as teacher/student pairs (rows without a reply
        never meet the plain SFT encoding). ``setup`` repeats the hand-over, idempotently.
        """
        SFTModule.trainer.fset(self, trainer)
        datamodule = getattr(trainer, "datamodule", None)
        if isinstance(datamodule, ChatDataModule):
            DistillationDataModule.adopt(datamodule).attach_distillation(self.data_spec())

    def setup(self, stage: str) -> None:
        """Encode the data as teacher/student pairs and open the logit caches.

        Other data sources (plain dataloaders, custom data modules) must yield batches that
        already carry the ``teacher_*`` keys of ``DistillationCollator``.
        """
        super().setup(stage)
        if self.tokenizer is not None:
            self.teacher.min_vocab = len(self.tokenizer)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if not isinstance(datamodule, ChatDataModule):
            return
        data = DistillationDataModule.adopt(datamodule)
        data.attach_distillation(self.data_spec())
        data.setup(stage)
        if self.distill.teacher_cache == "disk":
            self._open_logit_caches(data)

    def data_spec(self) -> DistillationDataSpec:
        source = self.distill.response_source
        return DistillationDataSpec(
            prompts=self.distill.prompts,
            responder=self.generate_teacher_responses if source == "teacher" else None,
            allow_prompt_only=source == "on_policy",
        )

    def cache_dir(self) -> Path:
        if self.distill.teacher_cache_dir:
            return Path(self.distill.teacher_cache_dir).expanduser()
        if self._trainer is not None:
            return Path(self.trainer.default_root_dir) / "teacher_cache"
        from autotrain_pl.models.builtin import cache_root

        return cache_root() / "distill"

    def _target_device(self) -> torch.device:
        return self.trainer.strategy.root_device if self._trainer is not None else self.device

    def _rank_zero_first(self, work) -> Any:
        """Run ``work`` on rank 0, then on the other ranks (which then find its files)."""
        if self._trainer is None or self.trainer.world_size == 1:
            return work()
        if self.trainer.is_global_zero:
            result = work()
            self.trainer.strategy.barrier()
            return result
        self.trainer.strategy.barrier()
        return work()

    def _open_logit_caches(self, data: DistillationDataModule) -> None:
        k = self.distill.kd_top_k
        rank = self.trainer.global_rank if self._trainer is not None else 0
        for split, dataset in data.split_datasets().items():
            fingerprint = data.fingerprints[split]
            if fingerprint in self.logit_caches:
                continue
            key = hashlib.sha256(f"{fingerprint}|{self.teacher.signature}|{k}".encode())
            directory = self.cache_dir() / f"logits-{key.hexdigest()[:16]}"
            counts = trained_token_counts(dataset)
            cache = self._rank_zero_first(
                lambda d=directory, c=counts: TeacherLogitCache(d, c, k, rank))
            self.logit_caches[fingerprint] = cache
            rank_zero_info(f"teacher logit cache ({split}): {cache.describe()}")

    # -- teacher replies (response_source: teacher) -----------------------------------------
    def generate_teacher_responses(self, prompts: list[list[Message]], split: str, renderer
                                   ) -> list[Message | None]:
        """Teacher replies to its own prompts, generated once and cached as JSONL.

        The cache is keyed by the teacher prompts' token ids (inputs, template, chat format),
        the teacher and the sampling settings; failed (cut off) and empty replies are dropped.
        """
        prompt_ids = [renderer.build_generation_prompt(p) for p in prompts]
        sampling = self.distill.sampling("teacher")
        settings = {"teacher_model": self.distill.teacher_model,
                    "teacher_signature": self.teacher.signature,
                    "sampling": asdict(sampling), "chat_format": renderer.name,
                    "teacher_prompt_template": self.distill.teacher_prompt_template,
                    "teacher_system_prompt": self.distill.teacher_system_prompt}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
        digest.update(json.dumps(prompt_ids).encode())
        fingerprint = digest.hexdigest()
        path = self.cache_dir() / f"generations-{split}-{fingerprint[:16]}.jsonl"

        def load_or_generate() -> list[dict]:
            rows = load_generations(path, fingerprint, len(prompt_ids))
            if rows is None:
                rows = self._generate(prompt_ids, sampling, renderer)
                save_generations(path, {"fingerprint": fingerprint, "count": len(rows),
                                        **settings}, rows)
            else:
                log.info("teacher replies (%s): reusing %s", split, path)
            return rows

        rows = self._rank_zero_first(load_or_generate)
        replies = [Message("assistant", r["content"]) if r["content"] else None for r in rows]
        failed = sum(r is None for r in replies)
        if failed:
            log.warning("teacher replies (%s): dropped %d of %d (cut off at "
                        "distill_max_teacher_length=%d or empty)", split, failed, len(replies),
                        self.distill.distill_max_teacher_length)
        return replies

    def _generate(self, prompt_ids: list[list[int]], sampling, renderer) -> list[dict]:
        from autotrain_pl.generation import MessageCompleter

        self.teacher.min_vocab = max(self.teacher.min_vocab, len(renderer.tokenizer))
        self.teacher.place(self._target_device())
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

    # -- on-policy batches ----------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        return super().training_step(self.maybe_on_policy(batch), batch_idx)

    def maybe_on_policy(self, batch: Mapping[str, Any]) -> Mapping[str, Any]:
        """With ``response_source: on_policy``, swap in student samples for a share ``lmbda``
        of batches (and always for rows without a reply). Done before the base step, so the
        step's token counts and normalization see the sampled tokens."""
        if self.distill.response_source != "on_policy" or "prompt_length" not in batch:
            return batch
        missing = not bool(batch["has_response"].all())
        if missing or self._on_policy_rng.random() < self.distill.lmbda:
            batch = sample_on_policy(self.model, self.tokenizer, self.renderer, batch,
                                     self.distill.sampling("student"),
                                     resolve_pad_token_id(self.tokenizer))
        return batch

    # -- loss -----------------------------------------------------------------------------------
    def teacher_targets(self, batch: Mapping[str, Any], selection: TokenSelection,
                        vocab_width: int) -> TeacherTargets:
        """The teacher's view of the selected tokens: cached top-k, or a live forward."""
        if "teacher_input_ids" not in batch:
            raise AutotrainError("distillation batches need teacher_input_ids, "
                                 "teacher_attention_mask and teacher_loss_weights; use a "
                                 "ChatDataModule (or DistillationCollator) for the data")
        k = self.distill.kd_top_k
        cache = None
        if "example_ids" in batch and not batch.get("on_policy"):
            cache = self.logit_caches.get(batch.get("cache_key"))
        if cache is not None:
            hit = cache.lookup(batch["example_ids"])
            if hit is not None:
                return TeacherTargets(topk_values=hit[0], topk_indices=hit[1]).to(self.device)
        logits, teacher_selection = self.teacher.trained_logits(batch, selection.labels.device)
        if not torch.equal(teacher_selection.labels, selection.labels):
            raise RuntimeError("teacher and student response tokens are not aligned; the batch "
                               "must carry the same trained tokens on both sides")
        if k is None:
            return TeacherTargets(logits=logits)
        values, indices = teacher_topk(logits, k, vocab_width)
        if cache is not None:
            cache.store(batch["example_ids"], teacher_selection.rows, values, indices)
        return TeacherTargets(topk_values=values, topk_indices=indices)

    def compute_loss(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        logits, selection = self.forward_logits(self.model, batch)
        ce_sum, terms = self.loss_fn(LossInputs(logits=logits, labels=selection.labels,
                                                loss_weights=selection.weights, normalizer=1.0))
        s = self.distill
        if s.alpha > 0:
            teacher = self.teacher_targets(batch, selection, logits.shape[-1])
            kd_sum = kd_divergence_sum(logits, teacher, selection.weights, kd_loss=s.kd_loss,
                                       beta=s.beta, temperature=s.temperature)
        else:
            kd_sum = ce_sum.new_zeros(())
        ce_weight = 0.0 if batch.get("on_policy") else 1.0 - s.alpha
        loss = s.alpha * s.temperature**2 * kd_sum + ce_weight * ce_sum
        units = selection.weights.sum().clamp_min(1e-8)
        metrics = {"loss_kd": kd_sum.detach() / units, "loss_ce": ce_sum.detach() / units}
        if len(terms) > 1:
            metrics.update({f"loss_{name}": value.detach() / units for name, value in terms.items()})
        return loss, metrics

    # -- cache bookkeeping ------------------------------------------------------------------
    def _flush_caches(self) -> None:
        for cache in self.logit_caches.values():
            cache.flush()

    def on_train_epoch_end(self) -> None:
        self._flush_caches()
        if self.logit_caches and self.trainer.world_size > 1:
            self.trainer.strategy.barrier()  # every rank has flushed: share what each filled
            for cache in self.logit_caches.values():
                cache.refresh()
        self.log("train/teacher_forwards", float(self.teacher.forward_calls))
        if self.logit_caches:
            disk = sum(c.disk_bytes for c in self.logit_caches.values())
            self.log("train/teacher_cache_disk_mib", disk / 2**20)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self._flush_caches()

    def on_fit_end(self) -> None:
        self._flush_caches()
        for cache in self.logit_caches.values():
            rank_zero_info(f"teacher logit cache: {cache.describe()}")
        super().on_fit_end()
