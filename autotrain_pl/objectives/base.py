"""Shared plumbing of every training objective.

``ObjectiveModule`` loads the policy model through ``autotrain_pl.models``, builds the optimizer
and schedule, drives each optimizer step through ``training.StepController``, logs, and exports a
Hugging Face directory at the end of fit. It assumes nothing about a batch's keys: everything
batch-shaped comes from the objective's own ``compute_loss``.

Hooks for subclasses (override one; never copy ``training_step``):

- ``compute_loss(batch) -> LossOutput``: the loss SUMMED over the batch's normalization units,
  the units, metric sums over the same units and the real tokens processed;
- ``derived_metrics(means) -> dict``: values computed from the per-unit means of a step or an
  evaluation epoch (SFT adds perplexity ``exp(loss)``);
- ``forward_logprobs`` / ``forward_logits``: how the policy is scored at trained positions.

Exact step normalization, on either Lightning path. The automatic path returns each micro-batch's
summed loss from ``training_step`` (times ``accumulate_grad_batches``, which Lightning divides it
by) and finishes the step in ``configure_gradient_clipping``, the hook Lightning calls once per
optimizer step with ``trainer.gradient_clip_val``: normalization by the units of all micro-batches
and ranks, clipping and the non-finite guard are one ``StepController.finish``. Objectives on
Lightning's manual optimization (``automatic_optimization = False``: PPO and GRPO update several
times per batch of rollouts) call ``backward_micro_batch`` and ``finish_optimizer_step``, which run
the same controller and log the same metrics.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import Tensor

from autotrain_pl.data import ChatDataModule
from autotrain_pl.errors import AutotrainError
from autotrain_pl.models import (
    LoraOptions,
    QuantizationOptions,
    export_model,
    fit_embeddings,
    load_model,
    prepare_for_training,
)
from autotrain_pl.training import (
    CompiledLayers,
    LossOutput,
    MeanAccumulator,
    StepController,
    StepOutcome,
    TokenSelection,
    check_loss_output,
    compiled_layers_for,
    forward_logprobs,
    forward_trained_logits,
    lr_lambda,
    parameter_groups,
    resolve_optimizer_class,
    warmup_steps_for,
)
from autotrain_pl.training.strategies import check_trainer_strategy

log = logging.getLogger(__name__)


class ObjectiveModule(LightningModule):
    """Base class of all objectives. Subclasses implement ``compute_loss``.

    Args:
        model_name_or_path: ``builtin:<name>``, a local directory, an exported run, or a hub id.
        dtype: weight dtype; float32 unless the trainer precision says otherwise.
        attn_implementation: ``sdpa``, ``eager``, ``flash_attention_2``... (None: default).
        gradient_checkpointing: recompute activations in backward to save memory.
        compile: ``torch.compile`` each decoder layer for training steps (dynamic shapes): fused
            elementwise kernels, ~1.15-1.2x faster steps on CPU after 20-40 s of compilation.
            Evaluation and generation stay eager. Where compilation cannot run (MPS, no C++
            compiler on a CPU machine) the run warns and trains uncompiled.
        trust_remote_code: allow model code from the hub (off by default, for safety).
        lora: LoRA options (r, alpha, dropout, target_modules); None trains all weights.
        quantization: 4-bit/8-bit bitsandbytes loading of the base (QLoRA, needs ``lora``).
        learning_rate: peak learning rate.
        weight_decay: AdamW decay, applied to matrices only (not biases or norms).
        betas: Adam betas.
        optimizer: ``adamw``, ``adamw_8bit``/``paged_adamw_8bit`` (CUDA), or an import path.
        optimizer_kwargs: extra keyword arguments for the optimizer.
        lr_scheduler: ``constant``, ``linear`` or ``cosine`` (after warmup).
        warmup_steps: linear warmup steps; if 0, ``warmup_ratio`` of the total steps is used.
        warmup_ratio: warmup as a fraction of the total optimizer steps.
        skip_non_finite_steps: skip (with a warning) an optimizer step whose gradients hold NaN
            or inf, so weights and optimizer state stay finite; counted as
            ``train/skipped_steps``.
        max_consecutive_skipped_steps: stop the run (one-line error, last checkpoint kept) when
            this many optimizer steps in a row were skipped as non-finite; null: never.
        export: write ``<default_root_dir>/export`` at the end of fit.
        export_mode: ``merged`` (LoRA folded in), ``adapter`` (adapter only) or ``full``.
        use_enhanced_eval: seed-style switch: add generation metrics, held-out and benchmark
            evaluation and a metrics file through ``configure_callbacks`` (see
            ``autotrain_pl.callbacks.enhanced_eval``). The ``eval_*`` keys below need it.
        eval_metrics: a list or a comma string, e.g. ``perplexity,bleu,rouge`` (``rouge``:
            rouge1, rouge2 and rougeL); default ``[perplexity]``.
        eval_steps: evaluate every N optimizer steps (default: at each validation run).
        eval_batch_size: prompts generated for (rows scored) at once.
        eval_dataset_path: a held-out file of its own, evaluated besides the validation rows and
            logged as ``eval/<metric>`` (perplexity included).
        eval_save_predictions: write ``<default_root_dir>/predictions/step_<N>.jsonl``.
        eval_benchmark: a multiple-choice benchmark scored at each evaluation (``arc``:
            ARC-Challenge, ``truthfulqa``: TruthfulQA MC2, ``mmlu``, ``hellaswag``...).
        eval_benchmark_data: its local copy in the hub layout (None: the hub dataset).
        eval_benchmark_num_fewshot: k-shot (None: the Open LLM Leaderboard's, e.g. 25 for arc).
        eval_benchmark_limit: score only the first N questions at each evaluation.
    """

    def __init__(
        self,
        model_name_or_path: str = "builtin:tiny",
        dtype: str = "float32",
        attn_implementation: str | None = None,
        gradient_checkpointing: bool = False,
        compile: bool = False,
        trust_remote_code: bool = False,
        lora: LoraOptions | None = None,
        quantization: QuantizationOptions | None = None,
        learning_rate: float = 2e-4,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        optimizer: str = "adamw",
        optimizer_kwargs: dict[str, Any] | None = None,
        lr_scheduler: str = "cosine",
        warmup_steps: int = 0,
        warmup_ratio: float = 0.0,
        skip_non_finite_steps: bool = True,
        max_consecutive_skipped_steps: int | None = 10,
        export: bool = True,
        export_mode: str = "merged",
        use_enhanced_eval: bool = False,
        eval_metrics: list[str] | str | None = None,
        eval_steps: int | None = None,
        eval_batch_size: int = 8,
        eval_dataset_path: str | None = None,
        eval_save_predictions: bool = False,
        eval_benchmark: str | None = None,
        eval_benchmark_data: str | None = None,
        eval_benchmark_num_fewshot: int | None = None,
        eval_benchmark_limit: int | None = None,
    ) -> None:
        super().__init__()
        from autotrain_pl.callbacks.enhanced_eval import check_enhanced_eval

        check_enhanced_eval(
            use_enhanced_eval, eval_metrics, eval_steps, eval_batch_size=eval_batch_size,
            eval_dataset_path=eval_dataset_path, eval_save_predictions=eval_save_predictions,
            eval_benchmark=eval_benchmark, eval_benchmark_data=eval_benchmark_data,
            eval_benchmark_num_fewshot=eval_benchmark_num_fewshot,
            eval_benchmark_limit=eval_benchmark_limit,
        )
        if not 0 < learning_rate < float("inf"):  # written so that NaN fails too
            raise AutotrainError(f"model.learning_rate={learning_rate} must be > 0 (e.g. 2e-4)")
        if not 0 <= weight_decay < float("inf"):
            raise AutotrainError(f"model.weight_decay={weight_decay} must be >= 0")
        if len(betas) != 2 or not all(0.0 <= beta < 1.0 for beta in betas):
            raise AutotrainError(f"model.betas={list(betas)} must be two numbers in [0, 1) "
                                 "(e.g. [0.9, 0.999])")
        if warmup_steps < 0 or not 0.0 <= warmup_ratio < 1.0:
            raise AutotrainError("model.warmup_steps must be >= 0 and model.warmup_ratio in [0, 1)")
        if export_mode not in ("merged", "adapter", "full"):
            raise AutotrainError(f"model.export_mode={export_mode!r}; use merged, adapter or full")
        if quantization is not None and lora is None:
            raise AutotrainError(
                "model.quantization without model.lora cannot be trained; set lora (QLoRA) or "
                "drop quantization"
            )
        lr_lambda(lr_scheduler, 0, 1)  # validates the schedule name before any model loads
        # ChatDataModule has an eval_batch_size of its own (its eval loaders'); Lightning refuses
        # to log two different values under one key, so this one stays out of hparams.
        self.save_hyperparameters(ignore=["eval_batch_size"])
        self.eval_batch_size = eval_batch_size
        self.step_controller = StepController(  # checks its options before the model loads
            skip_non_finite=skip_non_finite_steps,
            max_consecutive_skips=max_consecutive_skipped_steps)
        model = self.load_policy(
            model_name_or_path,
            dtype=dtype,
            attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code,
            quantization=quantization,
        )
        model.autotrain_base_ref = model_name_or_path  # a quantized merge export rebuilds from it
        self.model = prepare_for_training(model, lora=lora,
                                          gradient_checkpointing=gradient_checkpointing)
        self.model.train()  # from_pretrained returns eval mode, which would disable dropout
        self.tokenizer = None
        self.renderer = None
        #: The resolved config of the run, recorded in the export (``aitrain`` sets it).
        self.run_config: dict[str, Any] | None = None
        self._eval_means = MeanAccumulator()
        self._compiled_layers: CompiledLayers | None = None  # during fit, with compile=True

    @property
    def model_name_or_path(self) -> str:
        """The reference the policy was loaded from (``training.PolicyHolder``)."""
        return self.hparams.model_name_or_path

    # -- hooks for subclasses ---------------------------------------------------------------
    def load_policy(self, model_name_or_path: str, **options: Any):
        """Load the trained model before LoRA is applied (``models.load_model``); a reward model
        overrides it to load another head. Runs inside ``__init__``."""
        return load_model(model_name_or_path, **options)

    def compute_loss(self, batch: Mapping[str, Any]) -> LossOutput:
        """One micro-batch's ``LossOutput``: the loss SUMMED over its normalization units."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute_loss")

    def derived_metrics(self, means: Mapping[str, float]) -> dict[str, float]:
        """Metrics computed from a step's (or an evaluation epoch's) per-unit means."""
        return {}

    def forward_logprobs(self, model, batch: Mapping[str, Tensor], **keys: str
                         ) -> tuple[Tensor, TokenSelection]:
        """Per-token logprobs of the trained targets; override to change how they are scored."""
        return forward_logprobs(model, batch, **keys)

    def forward_logits(self, model, batch: Mapping[str, Tensor], **keys: str
                       ) -> tuple[Tensor, TokenSelection]:
        """Logits at the trained positions only (the LM head skips untrained positions)."""
        return forward_trained_logits(model, batch, **keys)

    def loss_output(self, batch: Mapping[str, Any]) -> LossOutput:
        """``compute_loss``, checked: a bare tensor (a mean, say) is a clear error."""
        return check_loss_output(self.compute_loss(batch), type(self).__name__)

    # -- data hand-over ---------------------------------------------------------------------
    #: The ``ChatDataModule.kind`` of rows this objective trains on.
    data_kind: str = "sft"

    @classmethod
    def check_datamodule(cls, datamodule) -> None:
        """Refuse rows of another kind (preference pairs for SFT, chat rows for DPO) in one line;
        the CLI calls it before the model loads, ``setup`` again for Python use."""
        if not isinstance(datamodule, ChatDataModule):
            return
        kind = datamodule.kind
        if kind == cls.data_kind:
            return
        held = {"preference": "preference pairs (chosen/rejected)",
                "sft": "chat rows (no chosen/rejected pair)"}.get(kind, f"{kind} rows")
        use = ("DPOModule or RewardModule" if kind == "preference" else
               "SFTModule (or DistillationModule)")
        raise AutotrainError(
            f"data.init_args.data_path holds {held}, which {cls.__name__} does not train on; "
            f"use {use} for this data, or give {cls.__name__} {cls.data_kind} rows"
        )

    def setup(self, stage: str) -> None:
        """Take the tokenizer and renderer of a ``ChatDataModule``; with other data, call
        ``attach_tokenizer`` before fit (export and generation need one)."""
        check_trainer_strategy(self.trainer, self)
        datamodule = self.trainer.datamodule
        own_encoding = getattr(self, "example_encoding", None)
        if own_encoding is None or own_encoding() is None:  # an encoding checks its own rows
            self.check_datamodule(datamodule)
        if isinstance(datamodule, ChatDataModule):
            self.attach_tokenizer(datamodule.tokenizer, datamodule.renderer)
        if stage == "fit" and self.hparams.export and self.renderer is not None:
            self.renderer.chat_template()  # a format the export cannot carry fails now, not after

    def attach_tokenizer(self, tokenizer, renderer=None) -> None:
        """Take the data's tokenizer and renderer; grow embeddings for added special tokens."""
        self.tokenizer, self.renderer = tokenizer, renderer
        if fit_embeddings(self.model, tokenizer):
            log.info("resized embeddings to %d for the tokens chat_format added", len(tokenizer))

    # -- training -----------------------------------------------------------------------------
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.step_controller.start_window()

    def on_fit_start(self) -> None:
        if self.hparams.compile:
            self._compiled_layers = compiled_layers_for(self.model, self.device)

    def training_forward(self) -> contextlib.AbstractContextManager[None]:
        """The context of a training forward: the compiled decoder layers when ``compile``."""
        layers = self._compiled_layers
        return layers.active() if layers is not None else contextlib.nullcontext()

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        with self.training_forward():
            output = self.loss_output(batch)
        if not self.automatic_optimization:
            self.backward_micro_batch(output)
            self.finish_optimizer_step()
            return output.loss_sum.detach()
        self.step_controller.accumulate(output)
        # Lightning divides what training_step returns by accumulate_grad_batches before
        # backward; the step normalizes by units instead, so the factor is undone here.
        return output.loss_sum * self.trainer.accumulate_grad_batches

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer,
                                    gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """Automatic path: Lightning calls this once per optimizer step, before the update.

        ``trainer.gradient_clip_val`` (norm) clips the normalized gradients inside the step;
        the ``value`` algorithm clips them after it.
        """
        by_norm = gradient_clip_algorithm in (None, "norm")
        outcome = self._finish(optimizer, clip_norm=gradient_clip_val or None if by_norm else None)
        if gradient_clip_val and not by_norm and not outcome.skipped:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def backward_micro_batch(self, output: LossOutput) -> None:
        """Manual optimization: backpropagate a micro-batch's summed loss and record it.

        A micro-batch with nothing to learn (its loss has no graph: every advantage zero, every
        rollout failed) is only recorded; its tokens still count. Under DDP it still runs a
        backward, of zero through every trained weight: each backward is an all-reduce, and a
        rank that skipped one while another did not would hang both.
        """
        loss = output.loss_sum
        carries_gradient = loss.requires_grad
        if not carries_gradient:
            if self._trainer is None or self._trainer.world_size == 1:
                self.step_controller.accumulate(output, carries_gradient=False)
                return
            loss = loss + 0.0 * sum(p.sum() for p in self.parameters() if p.requires_grad)
        self.manual_backward(loss)
        self.step_controller.accumulate(output, carries_gradient=carries_gradient)

    def finish_optimizer_step(self) -> StepOutcome:
        """Manual optimization: normalize, guard and clip the accumulated gradients, then step
        the optimizer and the lr schedule. A skipped step still calls ``optimizer.step()`` with
        every gradient None, so it changes nothing but counts, like the automatic path's."""
        optimizer = self.optimizers()
        optimizer = optimizer[0] if isinstance(optimizer, list) else optimizer
        outcome = self._finish(optimizer, clip_norm="default")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if scheduler is not None:
                scheduler.step()
        return outcome

    def _finish(self, optimizer: torch.optim.Optimizer, clip_norm: float | None | str
                ) -> StepOutcome:
        """The step itself, shared by both paths: ``StepController.finish``, warn, log."""
        trainer = self.trainer
        outcome = self.step_controller.finish(
            [p for p in self.parameters() if p.requires_grad],
            reduce=lambda totals: trainer.strategy.reduce(totals, reduce_op="sum"),
            world_size=trainer.world_size,
            clip_norm=clip_norm,
        )
        if outcome.skipped:
            self.step_controller.warn_skipped(trainer.global_step + 1, outcome, type(self).__name__)
        self.log_step(outcome, optimizer.param_groups[0]["lr"])
        return outcome

    def log_step(self, outcome: StepOutcome, lr: float) -> None:
        """Log a finished optimizer step. An objective that steps several times per training
        batch (PPO) may gather its steps and log them once."""
        means = {"loss": outcome.loss, **outcome.metrics}
        for name, value in {**means, **self.derived_metrics(means)}.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", on_step=True,
                     on_epoch=name == "loss", batch_size=1)
        self.log("train/lr", lr, prog_bar=True, on_step=True, batch_size=1)
        self.log("train/tokens_per_s", outcome.tokens_per_s, prog_bar=True, on_step=True,
                 batch_size=1)
        self.log("train/grad_norm", outcome.grad_norm, on_step=True, batch_size=1)
        self.log("train/skipped_steps", float(outcome.skipped_steps), on_step=True, batch_size=1)

    # -- evaluation ---------------------------------------------------------------------------
    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        output = self.loss_output(batch)
        self._eval_means.update(output)
        return output.loss_sum

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        return self.validation_step(batch, batch_idx)

    def _log_eval_epoch(self, prefix: str) -> None:
        means = self._eval_means.compute(
            reduce=lambda totals: self.trainer.strategy.reduce(totals, reduce_op="sum"),
            device=self.device,
        )
        if not means:
            return
        for name, value in {**means, **self.derived_metrics(means)}.items():
            self.log(f"{prefix}/{name}", value, prog_bar=name == "loss", sync_dist=False)

    def on_validation_epoch_end(self) -> None:
        self._log_eval_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval_epoch("test")

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """Greedy completions of ``ChatDataModule``'s predict prompts (left-padded batches)."""
        from autotrain_pl.generation import SamplingConfig, TokenCompleter

        completer = TokenCompleter(self.model, self.tokenizer, self.renderer)
        prompts = [ids[mask.bool()].tolist()
                   for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)]
        results = completer(prompts, SamplingConfig(max_new_tokens=128, temperature=0.0))
        metadata = batch.get("metadata") or [{}] * len(prompts)
        return [{"completion": r.text, "stop_reason": r.stop_reason, **m}
                for r, m in zip(results, metadata, strict=True)]

    # -- optimization -------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        accelerator = "cuda" if self.device.type == "cuda" else self.device.type
        optimizer_cls = resolve_optimizer_class(hp.optimizer, accelerator)
        kwargs = dict(hp.optimizer_kwargs or {})
        if "betas" in optimizer_cls.__init__.__code__.co_varnames:
            kwargs.setdefault("betas", tuple(hp.betas))
        if optimizer_cls is torch.optim.AdamW and self.device.type in ("cpu", "cuda"):
            # One fused kernel over all parameters instead of a Python loop per tensor.
            kwargs.setdefault("fused", True)
        optimizer = optimizer_cls(
            parameter_groups(self.trained_parameters(), hp.weight_decay),
            lr=hp.learning_rate, **kwargs,
        )
        total = max(1, self.scheduled_optimizer_steps())
        warmup = warmup_steps_for(total, hp.warmup_steps, hp.warmup_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(hp.lr_scheduler, warmup, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def trained_parameters(self) -> Iterator[tuple[str, torch.nn.Parameter]]:
        """The ``(name, parameter)`` pairs the optimizer updates: the policy's. An objective that
        trains more than the exported model (PPO's value head) adds its own."""
        return self.model.named_parameters()

    def scheduled_optimizer_steps(self) -> int:
        """The optimizer steps the lr schedule spans: Lightning's estimate, one per training
        batch. Objectives that step several times per batch (PPO's epochs x mini-batches)
        say so here, or their schedule would end early."""
        return int(self.trainer.estimated_stepping_batches)

    def configure_callbacks(self) -> list:
        """Eval callbacks for ``use_enhanced_eval=True``; Lightning merges them with the trainer's."""
        if not self.hparams.get("use_enhanced_eval"):
            return []
        from autotrain_pl.callbacks.enhanced_eval import (
            EnhancedEvalOptions,
            enhanced_eval_callbacks,
            has_validation_data,
        )

        trainer = self._trainer  # None when called outside a fit
        datamodule = trainer.datamodule if trainer is not None else None
        options = {key: self.hparams[key] for key in EnhancedEvalOptions.keys()
                   if key in self.hparams}
        options["eval_batch_size"] = getattr(self, "eval_batch_size", 8)
        return enhanced_eval_callbacks(**options,
                                       has_validation=has_validation_data(datamodule))

    # -- export -------------------------------------------------------------------------------
    def export_dir(self) -> Path:
        return Path(self.trainer.default_root_dir) / "export"

    def on_fit_end(self) -> None:
        self._compiled_layers = None  # the module leaves fit as it came in
        if not self.hparams.export or self.tokenizer is None:
            return
        if self.trainer.is_global_zero:
            out_dir = self.export_dir()
            try:
                log.info("exported the trained model to %s", self.export(out_dir))
            except OSError as error:  # disk full, a read-only directory
                raise AutotrainError(
                    f"could not write the export to {out_dir} ({error.strerror or error}); the "
                    "trained weights are in the run's checkpoints/last.ckpt: free space or fix "
                    "the directory, then run the same command with --ckpt_path last to export "
                    "them") from error
        self.trainer.strategy.barrier()

    def export(self, out_dir: str | Path) -> Path:
        """Write the policy as a Hugging Face directory (``export_mode``), with the tokenizer,
        the renderer's chat template and stop tokens, and the run's config."""
        if self.tokenizer is None:
            raise AutotrainError(
                f"{type(self).__name__} has no tokenizer to export with; fit it on a "
                "ChatDataModule or call attach_tokenizer(tokenizer, renderer) first"
            )
        return export_model(
            self.model, self.tokenizer, out_dir, mode=self.hparams.export_mode,
            renderer=self.renderer, base_model=self.hparams.model_name_or_path,
            run_config=self.run_config or dict(self.hparams),
        )
