"""Shared plumbing of every training objective.

``ObjectiveModule`` loads the policy model through ``autotrain_pl.models``, builds the optimizer
and schedule, logs loss, perplexity, lr, tokens/s and grad norm, normalizes the loss exactly over
each optimizer step, and exports a Hugging Face directory at the end of fit.

Exact step normalization. ``compute_loss`` returns a loss SUMMED over its normalization units
(weighted tokens for SFT, pairs for DPO). Gradients of these sums accumulate over the
micro-batches of one optimizer step; just before the step they are divided by the step's total
units, summed across micro-batches and ranks. The update therefore equals that of one big batch,
whatever the micro-batch lengths, instead of averaging per micro-batch means.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import Tensor
from torchmetrics import MeanMetric

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models import LoraOptions, QuantizationOptions, export_model, load_model
from autotrain_pl.models.loading import resize_embeddings
from autotrain_pl.objectives.optim import (
    lr_lambda,
    parameter_groups,
    resolve_optimizer_class,
    warmup_steps_for,
)
from autotrain_pl.objectives.stepping import StepController
from autotrain_pl.objectives.tokens import TokenSelection, forward_logprobs, forward_trained_logits

log = logging.getLogger(__name__)


def count_real_tokens(batch: Mapping[str, Tensor]) -> int:
    """Non-padding tokens of a batch; packed rows (4-D block masks) count every position."""
    mask = batch.get("attention_mask")
    if mask is not None and mask.dim() == 2:
        return int(mask.sum())
    return batch["input_ids"].numel()


class ObjectiveModule(LightningModule):
    """Base class of all objectives. Subclasses implement ``compute_loss``.

    Args:
        model_name_or_path: ``builtin:<name>``, a local directory, an exported run, or a hub id.
        dtype: weight dtype; float32 unless the trainer precision says otherwise.
        attn_implementation: ``sdpa``, ``eager``, ``flash_attention_2``... (None: default).
        gradient_checkpointing: recompute activations in backward to save memory.
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
        export: write ``<default_root_dir>/export`` at the end of fit.
        export_mode: ``merged`` (LoRA folded in), ``adapter`` (adapter only) or ``full``.
        use_enhanced_eval: seed-style switch: add generation metrics and a metrics file through
            ``configure_callbacks`` (see ``autotrain_pl.callbacks.enhanced_eval``).
        eval_metrics: with ``use_enhanced_eval``, e.g. ``[perplexity, bleu, rougeL]``.
        eval_steps: with ``use_enhanced_eval``, generate every N steps (default: each validation).
    """

    def __init__(
        self,
        model_name_or_path: str = "builtin:tiny",
        dtype: str = "float32",
        attn_implementation: str | None = None,
        gradient_checkpointing: bool = False,
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
        export: bool = True,
        export_mode: str = "merged",
        use_enhanced_eval: bool = False,
        eval_metrics: list[str] | None = None,
        eval_steps: int | None = None,
    ) -> None:
        super().__init__()
        from autotrain_pl.callbacks.enhanced_eval import check_enhanced_eval

        check_enhanced_eval(use_enhanced_eval, eval_metrics, eval_steps)
        if learning_rate <= 0:
            raise AutotrainError(f"model.learning_rate={learning_rate} must be > 0 (e.g. 2e-4)")
        if weight_decay < 0:
            raise AutotrainError(f"model.weight_decay={weight_decay} must be >= 0")
        if warmup_steps < 0 or not 0.0 <= warmup_ratio < 1.0:
            raise AutotrainError("model.warmup_steps must be >= 0 and model.warmup_ratio in [0, 1)")
        if export_mode not in ("merged", "adapter", "full"):
            raise AutotrainError(f"model.export_mode={export_mode!r}; use merged, adapter or full")
        lr_lambda(lr_scheduler, 0, 1)  # validates the schedule name before any model loads
        self.save_hyperparameters()
        self.model = load_model(
            model_name_or_path,
            dtype=dtype,
            attn_implementation=attn_implementation,
            gradient_checkpointing=gradient_checkpointing,
            trust_remote_code=trust_remote_code,
            lora=lora,
            quantization=quantization,
        )
        self.model.autotrain_base_ref = model_name_or_path
        self.model.train()  # from_pretrained returns eval mode, which would disable dropout
        self.tokenizer = None
        self.renderer = None
        self.val_loss = MeanMetric()
        # The automatic path normalizes with the same StepController as manual stepping and the
        # TrainingClient; Lightning's own clipping runs after it, so it neither clips nor skips.
        self._step_controller = StepController(gradient_clip_norm=None, skip_non_finite=False)
        self._window_tokens = 0
        self._window_start: float | None = None

    # -- hooks for subclasses ---------------------------------------------------------------
    def compute_loss(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Return ``(loss summed over normalization units, metrics)`` for one micro-batch."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute_loss")

    def loss_units(self, batch: Mapping[str, Tensor]) -> Tensor:
        """How many normalization units the batch holds; default: total target loss weight."""
        weights = batch["loss_weights"][:, 1:].float()
        if batch.get("attention_mask") is not None and batch["attention_mask"].dim() == 2:
            weights = weights * (batch["attention_mask"][:, 1:] > 0)
        if batch.get("position_ids") is not None:
            weights = weights * (batch["position_ids"][:, 1:] != 0)
        return weights.sum()

    def forward_logprobs(self, model, batch: Mapping[str, Tensor], **keys: str
                         ) -> tuple[Tensor, TokenSelection]:
        """Per-token logprobs of the trained targets; override to change how they are scored."""
        return forward_logprobs(model, batch, **keys)

    def forward_logits(self, model, batch: Mapping[str, Tensor], **keys: str
                       ) -> tuple[Tensor, TokenSelection]:
        """Logits at the trained positions only (the LM head skips untrained positions)."""
        return forward_trained_logits(model, batch, **keys)

    # -- data hand-over ---------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if datamodule is not None and getattr(datamodule, "tokenizer", None) is not None:
            self.attach_tokenizer(datamodule.tokenizer, datamodule.renderer)

    def attach_tokenizer(self, tokenizer, renderer=None) -> None:
        """Take the data's tokenizer and renderer; grow embeddings for added special tokens."""
        self.tokenizer, self.renderer = tokenizer, renderer
        if resize_embeddings(self.model, len(tokenizer)):
            log.info("resized embeddings to %d for the tokens chat_format added", len(tokenizer))

    # -- training -----------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        if getattr(self, "manual_stepping", None) is not None and not self.automatic_optimization:
            from autotrain_pl.objectives.manual import manual_training_step  # StepControlCallback

            return manual_training_step(self, batch, batch_idx)
        loss_sum, metrics = self.compute_loss(batch)
        units = self.loss_units(batch).detach()
        self._step_controller.accumulate(loss_sum, units)
        self._window_tokens += count_real_tokens(batch)
        for name, value in metrics.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=False)
        # Lightning divides by accumulate_grad_batches; on_before_optimizer_step undoes that.
        return loss_sum

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._window_start is None:
            self._window_start = time.perf_counter()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide accumulated gradients by the step's total units (all micro-batches, ranks)."""
        if getattr(self, "manual_stepping", None) is not None:  # objectives/manual.py does it
            return
        # Grads hold (1/k) * sum of per-micro-batch sums, averaged over ranks by DDP.
        outcome = self._step_controller.finish(
            self.parameters(),
            reduce=lambda totals: self.trainer.strategy.reduce(totals, reduce_op="sum"),
            grad_scale=self.trainer.accumulate_grad_batches * self.trainer.world_size,
            clip_norm=None,
        )
        step_loss = torch.tensor(outcome.loss)
        elapsed = max(time.perf_counter() - (self._window_start or time.perf_counter()), 1e-9)
        self.log("train/loss", step_loss, prog_bar=True, on_step=True, on_epoch=True)
        self.log("train/ppl", torch.exp(step_loss.clamp(max=30)), on_step=True)
        self.log("train/lr", optimizer.param_groups[0]["lr"], prog_bar=True, on_step=True)
        self.log("train/tokens_per_s", self._window_tokens * self.trainer.world_size / elapsed,
                 prog_bar=True, on_step=True)
        self.log("train/grad_norm", outcome.grad_norm, on_step=True)
        self._window_tokens, self._window_start = 0, None

    # -- evaluation ---------------------------------------------------------------------------
    def _eval_step(self, batch: Mapping[str, Tensor], prefix: str) -> Tensor:
        loss_sum, _ = self.compute_loss(batch)
        units = self.loss_units(batch)
        if units > 0:
            self.val_loss.update(loss_sum / units, weight=units)
        return loss_sum

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        return self._eval_step(batch, "val")

    def test_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        return self._eval_step(batch, "test")

    def _log_eval_epoch(self, prefix: str) -> None:
        if self.val_loss.update_count == 0:
            return
        loss = self.val_loss.compute()
        self.log(f"{prefix}/loss", loss, prog_bar=True, sync_dist=False)
        self.log(f"{prefix}/ppl", torch.exp(loss.clamp(max=30)), sync_dist=False)
        self.val_loss.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_eval_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval_epoch("test")

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """Greedy completions of the predict prompts (left-padded batches)."""
        from autotrain_pl.generation import SamplingConfig, TokenCompleter

        completer = TokenCompleter(self.model, self.tokenizer, self.renderer)
        prompts = [
            ids[mask.bool()].tolist() for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)
        ]
        results = completer(prompts, SamplingConfig(max_new_tokens=128, temperature=0.0))
        metadata = batch.get("metadata") or [{}] * len(prompts)
        return [{"completion": r.text, "stop_reason": r.stop_reason, **m} for r, m in zip(results, metadata, strict=True)]

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
            parameter_groups(self.model.named_parameters(), hp.weight_decay), lr=hp.learning_rate, **kwargs
        )
        stepping = getattr(self, "manual_stepping", None)
        total = (stepping.estimated_optimizer_steps(self.trainer) if stepping is not None
                 else max(1, int(self.trainer.estimated_stepping_batches)))
        warmup = warmup_steps_for(total, hp.warmup_steps, hp.warmup_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(hp.lr_scheduler, warmup, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_callbacks(self) -> list:
        """Eval callbacks for ``use_enhanced_eval=True``; Lightning merges them with the trainer's."""
        if not self.hparams.get("use_enhanced_eval"):
            return []
        from autotrain_pl.callbacks.enhanced_eval import enhanced_eval_callbacks

        return enhanced_eval_callbacks(self.hparams.eval_metrics, self.hparams.eval_steps)

    # -- export -------------------------------------------------------------------------------
    def export_dir(self) -> Path:
        return Path(self.trainer.default_root_dir) / "export"

    def on_fit_end(self) -> None:
        if not self.hparams.export or self.tokenizer is None:
            return
        if self.trainer.is_global_zero:
            run_config = getattr(self.trainer, "autotrain_run_config", None) or dict(self.hparams)
            out = export_model(
                self.model, self.tokenizer, self.export_dir(), mode=self.hparams.export_mode,
                renderer=self.renderer, base_model=self.hparams.model_name_or_path,
                run_config=run_config,
            )
            log.info("exported the trained model to %s", out)
        self.trainer.strategy.barrier()
