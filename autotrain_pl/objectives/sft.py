"""Supervised fine-tuning on the renderer's per-token loss weights, optionally distilled.

``SFTModule(use_distillation=True, teacher_model=..., distillation={...})`` distils from a frozen
teacher: a ``Distiller`` (``objectives.distillation``) adds the teacher, its caches and the
teacher/student data encoding. ``DistillationModule`` is the same objective with every
distillation option as its own argument.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from autotrain_pl.data import ChatDataModule
from autotrain_pl.data.example_encoding import ExampleEncoding
from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import CompositeLoss, LossInputs
from autotrain_pl.objectives.base import ObjectiveModule
from autotrain_pl.objectives.distillation.distiller import Distiller, check_shared_vocabulary
from autotrain_pl.objectives.distillation.settings import DistillationSettings, merge_options
from autotrain_pl.training import LossOutput, count_real_tokens


class SFTModule(ObjectiveModule):
    """Weighted token cross-entropy, or a composite of token losses, on chat data.

    Args:
        label_smoothing: cross-entropy label smoothing (the ``ce`` term).
        loss: ``"ce"`` or a composite of registered token losses with coefficients, for example
            ``{ce: 1.0, entropy: -0.01}``; every term is logged as ``train/loss_<term>``. Terms
            that read a teacher's logits (``kl``, ``reverse_kl``, ``jsd``) need distillation.
        loss_params: keyword arguments per term, for example ``{focal: {gamma: 2.0}}``.
        use_distillation: distil from ``teacher_model`` (see ``DistillationModule`` for the
            loss and every option).
        teacher_model: the teacher reference, with ``use_distillation``.
        distillation: the distillation options as a mapping, e.g. ``{temperature: 2.0}``; the
            seed names ``distill_temperature`` and ``distill_alpha`` are accepted.
        **kwargs: the shared options of ``ObjectiveModule`` (model, LoRA, optimizer, ...).
    """

    def __init__(
        self,
        *args: Any,
        label_smoothing: float = 0.0,
        loss: str | dict[str, float] = "ce",
        loss_params: dict[str, dict[str, Any]] | None = None,
        use_distillation: bool = False,
        teacher_model: str | None = None,
        distillation: dict | None = None,  # not dict[str, Any]: jsonargparse re-parses Any
        **kwargs: Any,
    ) -> None:
        if not use_distillation and (teacher_model or distillation):
            raise AutotrainError("model.teacher_model/distillation take effect only with "
                                 "model.use_distillation=true; set it or remove them")
        if not 0.0 <= label_smoothing < 1.0:
            raise AutotrainError(f"model.label_smoothing={label_smoothing} must be in [0, 1)")
        terms = {loss: 1.0} if isinstance(loss, str) else dict(loss)
        params = {name: dict(p) for name, p in (loss_params or {}).items()}
        if label_smoothing:
            params.setdefault("ce", {})["label_smoothing"] = label_smoothing
        loss_fn = CompositeLoss(terms, params=params)  # validated before the model loads
        settings = None
        if use_distillation:
            settings = self.distillation_settings(teacher_model, distillation)
            check_shared_vocabulary(_student_ref(args, kwargs), settings.teacher_model,
                                    bool(kwargs.get("trust_remote_code", False)))
        needs = loss_fn.needs - {"teacher"} if settings else loss_fn.needs
        if needs:
            raise AutotrainError(
                f"model.loss terms {loss_fn.terms_needing(needs)} need "
                f"{', '.join(sorted(needs))} inputs, which supervised fine-tuning does not have; "
                + ("use use_distillation: true with a teacher_model (or DistillationModule) for "
                   "teacher terms, or remove them" if "teacher" in needs else
                   "use TrainingClient.forward_backward for policy-gradient terms, or remove them")
            )
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn
        self.distiller: Distiller | None = None
        if settings is not None:
            self.distiller = Distiller(settings, student_dtype=self.hparams.dtype,
                                       attn_implementation=self.hparams.attn_implementation,
                                       trust_remote_code=self.hparams.trust_remote_code)

    @staticmethod
    def distillation_settings(teacher_model: str | None, options: Mapping[str, Any] | None
                              ) -> DistillationSettings:
        """The options of the ``distillation`` mapping, checked before any model loads."""
        explicit = {"teacher_model": teacher_model}
        defaults = {name: getattr(DistillationSettings, name, None)
                    for name in DistillationSettings.__dataclass_fields__}
        return DistillationSettings(**merge_options({**defaults, **explicit}, defaults, options))

    @property
    def distill(self) -> DistillationSettings | None:
        return self.distiller.settings if self.distiller is not None else None

    @property
    def teacher(self):
        """The frozen teacher (``training.FrozenModel``), when distilling."""
        return self.distiller.teacher if self.distiller is not None else None

    # -- data -----------------------------------------------------------------------------------
    def example_encoding(self) -> ExampleEncoding | None:
        """Teacher/student pairs when distilling (``data.EncodingProvider``); else None."""
        if self.distiller is None:
            return None
        return self.distiller.encoding(self._teacher_responder)

    def _teacher_responder(self, prompts, split: str, renderer):
        return self.distiller.generate_teacher_responses(self.trainer, prompts, split, renderer)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.distiller is None:
            return
        if self.tokenizer is not None:
            self.distiller.teacher.min_vocab = len(self.tokenizer)
        if isinstance(self.trainer.datamodule, ChatDataModule):
            self.distiller.open_logit_caches(self.trainer)

    # -- loss -----------------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        if self.distiller is not None:
            batch = self.distiller.maybe_on_policy(self, batch)
        return super().training_step(batch, batch_idx)

    def compute_loss(self, batch: Mapping[str, Any]) -> LossOutput:
        logits, selection = self.forward_logits(self.model, batch)
        units = selection.weights.sum()
        tokens = count_real_tokens(batch)
        if self.distiller is None:
            inputs = LossInputs(logits=logits, labels=selection.labels,
                                loss_weights=selection.weights, normalizer=1.0)
            total, terms = self.loss_fn(inputs)
            metrics = {f"loss_{name}": value for name, value in terms.items()} if len(terms) > 1 \
                else {}
            return LossOutput.from_sum(total, units, metrics, tokens)
        s = self.distiller.settings
        teacher = self.distiller.teacher_targets(batch, selection, logits.shape[-1])
        inputs = LossInputs(logits=logits, labels=selection.labels, loss_weights=selection.weights,
                            normalizer=1.0,
                            **{k: v for k, v in _teacher_fields(teacher).items()})
        ce_sum, terms = self.loss_fn(inputs)
        kd_sum = self.distiller.kd_sum(logits, selection, teacher) if s.alpha > 0 \
            else ce_sum.new_zeros(())
        ce_weight = 0.0 if batch.get("on_policy") else 1.0 - s.alpha
        loss = s.alpha * s.temperature**2 * kd_sum + ce_weight * ce_sum
        metrics = {"loss_kd": kd_sum, **{f"loss_{name}": value for name, value in terms.items()}}
        if len(terms) > 1:
            metrics["loss_sft"] = ce_sum  # the composite's total, which 1 - alpha weights
        return LossOutput.from_sum(loss, units, metrics, tokens)

    def derived_metrics(self, means: Mapping[str, float]) -> dict[str, float]:
        """Perplexity ``exp`` of the cross-entropy per trained token, where there is one."""
        if "loss_ce" in means:
            ce = means["loss_ce"]
        elif self.distiller is None and [t.label for t in self.loss_fn.terms] == ["ce"]:
            ce = means["loss"]
        else:
            return {}
        return {"ppl": math.exp(min(ce, 30.0))}

    # -- cache bookkeeping ----------------------------------------------------------------------
    def on_train_epoch_end(self) -> None:
        if self.distiller is None:
            return
        self.distiller.share_caches(self.trainer)
        for name, value in self.distiller.epoch_metrics().items():
            self.log(f"train/{name}", value)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.distiller is not None:
            self.distiller.flush_caches()

    def on_fit_end(self) -> None:
        if self.distiller is not None:
            self.distiller.flush_caches()
            for cache in self.distiller.logit_caches.values():
                self.print(f"teacher logit cache: {cache.describe()}")
        super().on_fit_end()


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
        response_source: ``auto`` (default: ``teacher`` when the data holds no replies, i.e.
            prompts only; ``dataset`` when it does; the choice is logged), ``dataset`` (the
            rows' replies), ``teacher`` (generated once by the teacher behind its template,
            cached as JSONL) or ``on_policy`` (a share ``lmbda`` of batches is sampled from the
            current student; the rest use the rows' replies).
        lmbda: share of on-policy batches for ``response_source: on_policy``.
        distill_max_teacher_length: most tokens per generated reply (teacher or student),
            default 512. The teacher's replies are training targets, and a reply cut at the
            limit (dropped, with a warning) would teach the student to stop mid-answer;
            generation stops at the end of turn, so short replies cost nothing extra.
        teacher_sampling: ``SamplingConfig`` keys for teacher replies (default greedy).
        student_sampling: ``SamplingConfig`` keys for on-policy samples (default temperature 1).
        kd_top_k: keep only the teacher's top-k logits, renormalized.
        teacher_cache: ``none`` or ``disk``: cache the teacher's top-k logits (k defaults to 32)
            so epochs after the first, and later runs, run no teacher forward.
        teacher_cache_dir: cache folder (default ``<default_root_dir>/teacher_cache``).
        teacher_dtype: teacher weight dtype (default: the student's ``dtype``).
        teacher_device: run the teacher on its own device (e.g. ``cuda:1``); default: the
            student's.
        teacher_quantization: load the teacher in 4/8 bits (bitsandbytes).
        use_distillation: always true here.
        distillation: the same options as a mapping; a key set both ways is an error.
        **kwargs: ``SFTModule`` and ``ObjectiveModule`` options for the student.

    The teacher is a ``training.FrozenModel``, not a submodule: it is not in ``state_dict`` or
    checkpoints, not in the optimizer, and not moved or wrapped by the strategy.
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
        response_source: str = "auto",
        lmbda: float = 0.5,
        distill_max_teacher_length: int = 512,
        teacher_sampling: dict[str, Any] | None = None,
        student_sampling: dict[str, Any] | None = None,
        kd_top_k: int | None = None,
        teacher_cache: str = "none",
        teacher_cache_dir: str | None = None,
        teacher_dtype: str | None = None,
        teacher_device: str | None = None,
        teacher_quantization: Any | None = None,
        use_distillation: bool = True,
        distillation: dict | None = None,
        **kwargs: Any,
    ) -> None:
        if not use_distillation:
            raise AutotrainError("model.use_distillation=false with DistillationModule; use "
                                 "SFTModule for plain fine-tuning")
        explicit = {name: value for name, value in locals().items()
                    if name in DistillationSettings.__dataclass_fields__}
        defaults = {name: getattr(DistillationSettings, name)
                    for name in DistillationSettings.__dataclass_fields__}
        options = merge_options(explicit, defaults, distillation)
        teacher = options.pop("teacher_model")
        super().__init__(*args, use_distillation=True, teacher_model=teacher,
                         distillation=options, **kwargs)


def _student_ref(args: tuple, options: Mapping[str, Any]) -> str:
    """The student reference, before the student loads."""
    if args:
        return args[0]
    return options.get("model_name_or_path", "builtin:tiny")


def _teacher_fields(teacher: Mapping[str, Tensor]) -> dict[str, Tensor]:
    if "logits" in teacher:
        return {"teacher_logits": teacher["logits"]}
    return {"teacher_topk_values": teacher["values"], "teacher_topk_indices": teacher["indices"]}
