"""``TrainingClient``: a research loop's handle on one model, in the spirit of Tinker.

You own the loop; the client owns the model, the optimizer and the numerics::

    client = TrainingClient("builtin:tiny", lora={"r": 8})
    for batch in batches:
        client.forward_backward(batch, "ce")        # or forward_backward_custom(batch, fn)
        client.optim_step(AdamParams(lr=1e-4))

Exact normalization. ``forward_backward`` backpropagates each batch's loss SUMMED over its
units (weighted target tokens) and ``optim_step`` divides the accumulated gradients by the units
of all ``forward_backward`` calls since the last step, so three uneven micro-batches give the
update of one batch holding all of them. ``forward_backward_custom`` gradients are taken as-is
(the function owns its normalization) and added after that division, so both kinds can share a
step. Clipping and the non-finite guard are ``training.StepController``, the code the
Lightning manual-optimization path runs too.

Ordering. The ``*_async`` methods return ``concurrent.futures.Future`` objects executed one at a
time, in submission order, on one worker thread. Once that worker exists, the synchronous
methods queue behind it too (and wait), so every call, sync or async, runs in the order it was
made: submit the next ``forward_backward_async`` before reading the last one's result, and an
``optim_step_async`` submitted after them sees all their gradients.

Devices and precision come from Lightning Fabric (accelerator ``auto``: CUDA, then MPS, then
CPU; precision per ``autotrain_pl.models.default_precision``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from autotrain_pl.client.batches import (
    padded_logprobs,
    prepare_batch,
    prompt_token_lists,
    token_value_inputs,
)
from autotrain_pl.client.ordering import OrderedWorker
from autotrain_pl.client.state import load_client_state, save_client_state
from autotrain_pl.client.types import AdamParams, ForwardBackwardResult, OptimStepResult
from autotrain_pl.errors import AutotrainError
from autotrain_pl.importing import import_object
from autotrain_pl.losses import CompositeLoss, LossInputs, get_loss, selective_log_softmax
from autotrain_pl.training import (
    LossOutput,
    StepController,
    TokenSelection,
    count_real_tokens,
    forward_logprobs,
    forward_trained_logits,
    parameter_groups,
)

CustomLossFn = Callable[[Tensor, TokenSelection], tuple[Tensor, Mapping[str, Any]] | Tensor]
_DECAY_KEY = "autotrain_decay"  # marks the param group that AdamParams.weight_decay applies to


class TrainingClient:
    """Forward/backward, optimizer steps, sampling and checkpoints on one model.

    Args:
        model: a model reference (``builtin:<name>``, local directory, exported run, hub id) or
            an already loaded causal LM.
        tokenizer: the tokenizer (loaded from ``model`` when that is a reference); needed by
            ``sample``, ``export`` and chat prompts.
        lora: ``LoraOptions`` or a dict of them; wraps the model with a LoRA adapter.
        accelerator: ``auto``, ``cpu``, ``cuda``/``gpu`` or ``mps``.
        precision: Fabric precision (``32-true``, ``bf16-mixed``...); None: the device default.
        renderer: chat format name or ``Renderer``, for chat prompts and end-of-turn stops.
        seed: seeds torch, Python and NumPy before the model loads.
        **load_options: more ``load_model`` options (``dtype``, ``gradient_checkpointing``,
            ``attn_implementation``, ``quantization``, ``trust_remote_code``).
    """

    def __init__(
        self,
        model: str | torch.nn.Module = "builtin:tiny",
        tokenizer: Any | None = None,
        *,
        lora: Any | None = None,
        accelerator: str = "auto",
        precision: str | None = None,
        renderer: Any | None = None,
        seed: int | None = None,
        **load_options: Any,
    ) -> None:
        from lightning.fabric import Fabric, seed_everything

        from autotrain_pl.models import (
            LoraOptions,
            apply_lora,
            default_precision,
            load_model,
            load_tokenizer,
            select_accelerator,
        )

        if seed is not None:
            seed_everything(seed, verbose=False)
        accelerator = select_accelerator(accelerator)
        self.fabric = Fabric(accelerator=accelerator, devices=1,
                             precision=precision or default_precision(accelerator))
        if isinstance(model, str):
            self.model_ref: str | None = model
            model = load_model(model, lora=lora, **load_options)
            tokenizer = tokenizer if tokenizer is not None else load_tokenizer(self.model_ref)
        elif isinstance(model, torch.nn.Module):
            self.model_ref = getattr(model, "autotrain_base_ref", None)
            if lora is not None:
                options = lora if isinstance(lora, LoraOptions) else LoraOptions(**dict(lora))
                model = apply_lora(model, options)
        else:
            raise AutotrainError(
                f"model={model!r} must be a model reference such as 'builtin:tiny' or a loaded "
                "causal LM"
            )
        self.tokenizer = tokenizer
        self.renderer = self._build_renderer(renderer, model)
        quantized = bool(getattr(model, "is_quantized", False))  # bnb weights cannot be moved
        self.model = self.fabric.setup_module(model, move_to_device=not quantized).module
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise AutotrainError("the model has no trainable parameters; load it without freezing "
                                 "or give lora options")
        self.controller = StepController()
        self.step_count = 0
        self.adam_params: AdamParams | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._fabric_optimizer: Any = None
        self._custom_grads: list[Tensor | None] | None = None
        self._completer: Any = None
        self._worker = OrderedWorker()

    # -- setup helpers ------------------------------------------------------------------------
    def _build_renderer(self, renderer: Any, model: torch.nn.Module) -> Any:
        if renderer is None or not isinstance(renderer, str):
            return renderer
        if self.tokenizer is None:
            raise AutotrainError(f"renderer={renderer!r} needs a tokenizer; pass tokenizer=...")
        from autotrain_pl.models import chat_tokenizer, fit_embeddings

        self.tokenizer, built = chat_tokenizer(self.tokenizer, renderer)
        fit_embeddings(model, self.tokenizer)
        return built

    @property
    def device(self) -> torch.device:
        return self.fabric.device

    # -- forward / backward -------------------------------------------------------------------
    def forward_backward(self, batch: Mapping[str, Tensor], loss_fn: Any = "ce",
                         **loss_params: Any) -> ForwardBackwardResult:
        """Accumulate the gradients of ``loss_fn`` on ``batch`` (summed over its units).

        Args:
            batch: ``input_ids``, ``attention_mask``, ``loss_weights`` ([B, T]; weight of token
                ``t`` as a target), optionally ``position_ids`` and per-token ``advantages``,
                ``old_logprobs``, ``ref_logprobs`` (``[B]``, ``[B, T]`` or ``[B, T-1]``).
            loss_fn: a registered loss name (``ce``, ``focal``, ``importance_sampling``, ``ppo``,
                ...), an import path, a ``{name: weight}`` composite, or a callable
                ``(LossInputs, **loss_params) -> Tensor | (Tensor, metrics)``. Callables must
                honour ``LossInputs.normalizer`` (it is 1: return the SUM over units).
            **loss_params: keyword arguments of the loss (per-term dicts for composites).
        """
        return self._serialized(self._forward_backward, batch, loss_fn, loss_params)

    def forward_backward_custom(self, batch: Mapping[str, Tensor],
                                fn: CustomLossFn | str) -> ForwardBackwardResult:
        """Backpropagate ``fn(logprobs, selection) -> (loss, metrics)`` as-is.

        ``logprobs`` are the ``[N]`` per-token logprobs of the trained targets (with grad) and
        ``selection`` their ``TokenSelection`` (rows, positions, labels, weights). The loss is
        NOT divided by any unit count at ``optim_step``: the function owns its normalization,
        e.g. ``-(logprobs * selection.weights).sum() / selection.weights.sum()``.
        ``fn`` may be a callable or an import path (``mypkg.losses.my_fn``).
        """
        return self._serialized(self._forward_backward_custom, batch, fn)

    def forward(self, batch: Mapping[str, Tensor], loss_fn: Any = "ce",
                **loss_params: Any) -> ForwardBackwardResult:
        """Logprobs and loss without gradients (eval mode: no dropout)."""
        return self._serialized(self._forward, batch, loss_fn, loss_params)

    def _train_mode(self, mode: bool) -> None:
        if self.model.training != mode:  # walking every module each call costs measurable time
            self.model.train(mode)

    def _forward_backward(self, batch: Mapping[str, Tensor], loss_fn: Any,
                          loss_params: dict[str, Any]) -> ForwardBackwardResult:
        self._train_mode(True)
        batch = prepare_batch(batch, self.device)
        self.controller.start_window()
        loss_sum, metrics, logits, selection = self._loss(batch, loss_fn, loss_params)
        self.fabric.backward(loss_sum)
        units = selection.weights.sum()
        self.controller.accumulate(LossOutput.from_sum(loss_sum, units,
                                                       tokens=count_real_tokens(batch)))
        return self._result(loss_sum, units, metrics, logits, selection, batch)

    def _forward(self, batch: Mapping[str, Tensor], loss_fn: Any,
                 loss_params: dict[str, Any]) -> ForwardBackwardResult:
        self._train_mode(False)
        batch = prepare_batch(batch, self.device)
        with torch.no_grad():
            loss_sum, metrics, logits, selection = self._loss(batch, loss_fn, loss_params)
            return self._result(loss_sum, selection.weights.sum(), metrics, logits, selection,
                                batch)

    def _forward_backward_custom(self, batch: Mapping[str, Tensor],
                                 fn: CustomLossFn | str) -> ForwardBackwardResult:
        fn = _resolve_callable(fn)
        self._train_mode(True)
        batch = prepare_batch(batch, self.device)
        with self.fabric.autocast():
            logprobs, selection = forward_logprobs(self.model, batch)
        out = fn(logprobs, selection)
        loss, metrics = out if isinstance(out, tuple) else (out, {})
        if not isinstance(loss, Tensor) or loss.dim() != 0:
            raise AutotrainError("forward_backward_custom: fn must return a scalar tensor loss "
                                 "(or (loss, metrics))")
        summed = [p.grad for p in self.params]  # set aside: custom grads are not normalized
        for param in self.params:
            param.grad = None
        self.fabric.backward(loss)
        self._add_custom_grads([p.grad for p in self.params])
        for param, grad in zip(self.params, summed, strict=True):
            param.grad = grad
        values = {k: float(v) for k, v in dict(metrics).items()}
        loss_value = float(loss.detach())
        return ForwardBackwardResult(
            loss=loss_value,
            logprobs=padded_logprobs(logprobs, selection, batch["input_ids"].shape),
            metrics={"loss": loss_value, **values}, units=float(selection.weights.sum()),
        )

    def _add_custom_grads(self, grads: list[Tensor | None]) -> None:
        if self._custom_grads is None:
            self._custom_grads = grads
            return
        for index, grad in enumerate(grads):
            held = self._custom_grads[index]
            if grad is not None:
                self._custom_grads[index] = grad if held is None else held.add_(grad)

    def _loss(self, batch: dict[str, Any], loss_fn: Any, loss_params: dict[str, Any]
              ) -> tuple[Tensor, dict[str, Tensor], Tensor, TokenSelection]:
        """Summed loss over the batch's units, its metrics, the trained logits and selection."""
        fn, params = _resolve_loss(loss_fn, loss_params)
        with self.fabric.autocast():
            logits, selection = forward_trained_logits(self.model, batch)
            inputs = LossInputs(logits=logits, labels=selection.labels,
                                loss_weights=selection.weights, normalizer=1.0,
                                **token_value_inputs(batch, selection))
            out = fn(inputs, **params)
        loss_sum, terms = out if isinstance(out, tuple) else (out, {})
        return loss_sum, dict(terms), logits, selection

    def _result(self, loss_sum: Tensor, units: Tensor, terms: dict[str, Tensor], logits: Tensor,
                selection: TokenSelection, batch: dict[str, Any]) -> ForwardBackwardResult:
        with torch.no_grad():
            logprobs = selective_log_softmax(logits.detach(), selection.labels)
        units_value = float(units)
        per_unit = 1.0 / units_value if units_value > 0 else 0.0
        loss = float(loss_sum.detach()) * per_unit
        metrics = {"loss": loss, "units": units_value}
        if len(terms) > 1:  # composite terms are sums too: report them per unit
            metrics.update({f"loss_{name}": float(v) * per_unit for name, v in terms.items()})
        return ForwardBackwardResult(
            loss=loss, logprobs=padded_logprobs(logprobs, selection, batch["input_ids"].shape),
            metrics=metrics, units=units_value,
        )

    # -- optimizer ----------------------------------------------------------------------------
    def optim_step(self, adam: AdamParams) -> OptimStepResult:
        """One AdamW step on the gradients accumulated since the last one, then zero them.

        Gradients of ``forward_backward`` are divided by their total units, custom gradients
        added, the norm measured, the step skipped with a ``NonFiniteGradientWarning`` if it is
        not finite, else clipped to ``adam.grad_clip_norm`` and applied.
        """
        return self._serialized(self._optim_step, adam)

    def _optim_step(self, adam: AdamParams) -> OptimStepResult:
        if not isinstance(adam, AdamParams):
            raise AutotrainError(f"optim_step takes AdamParams(lr=...), got {type(adam).__name__}")
        optimizer = self._ensure_optimizer(adam)
        self._apply_adam_params(optimizer, adam)
        scaler = getattr(self.fabric.strategy.precision, "scaler", None)
        extra = self._custom_grads
        has_grads = any(p.grad is not None for p in self.params) or extra is not None
        if scaler is not None and has_grads:
            scaler.unscale_(optimizer)  # 16-mixed: clip and check the true gradients
            if extra is not None:
                inverse = 1.0 / scaler.get_scale()
                extra = [g * inverse if g is not None else None for g in extra]
        outcome = self.controller.finish(self.params, clip_norm=adam.grad_clip_norm,
                                         extra_grads=extra)
        self._custom_grads = None
        self.step_count += 1
        if outcome.skipped:
            StepController.warn_skipped(self.step_count, outcome, "TrainingClient.optim_step")
            if scaler is not None and has_grads:
                scaler.update()  # lowers the loss scale after an overflow
        elif has_grads:
            self._fabric_optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return OptimStepResult(step=self.step_count, lr=float(adam.lr),
                               grad_norm=outcome.grad_norm, skipped=outcome.skipped,
                               loss=outcome.loss, units=outcome.units,
                               tokens_per_s=outcome.tokens_per_s)

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        """The AdamW optimizer, created by the first ``optim_step`` (None before)."""
        return self._optimizer

    def _ensure_optimizer(self, adam: AdamParams) -> torch.optim.Optimizer:
        if self._optimizer is None:
            groups = parameter_groups(self.model.named_parameters(), adam.weight_decay)
            groups[0][_DECAY_KEY] = True
            self._optimizer = torch.optim.AdamW(groups, lr=adam.lr, betas=adam.betas,
                                                eps=adam.eps, weight_decay=adam.weight_decay)
            self._fabric_optimizer = self.fabric.setup_optimizers(self._optimizer)
        return self._optimizer

    def _apply_adam_params(self, optimizer: torch.optim.Optimizer, adam: AdamParams) -> None:
        for group in optimizer.param_groups:
            group["lr"], group["betas"], group["eps"] = adam.lr, adam.betas, adam.eps
            group["weight_decay"] = adam.weight_decay if group.get(_DECAY_KEY) else 0.0
        self.adam_params = adam

    # -- sampling -----------------------------------------------------------------------------
    def sample(self, prompts: Any, sampling: Any | None = None) -> list[Any]:
        """Complete prompts with the current weights through ``generation.TokenCompleter``.

        Args:
            prompts: token ids, a list of them, a conversation (``Message``s or role/content
                dicts, rendered with the client's renderer) or a list of conversations.
            sampling: ``autotrain_pl.generation.SamplingConfig`` (None: its defaults).

        Returns:
            ``TokenCompletion`` objects (tokens, raw logprobs, stop reason, text), prompt-major.
        """
        return self._serialized(self._sample, prompts, sampling)

    def _sample(self, prompts: Any, sampling: Any | None) -> list[Any]:
        from autotrain_pl.generation import TokenCompleter

        if self.tokenizer is None:
            raise AutotrainError("sample() needs a tokenizer; build TrainingClient(model, "
                                 "tokenizer=...)")
        if self._completer is None:
            self._completer = TokenCompleter(self.model, self.tokenizer, self.renderer)
        prompt_ids = prompt_token_lists(prompts, self.renderer)
        self._train_mode(False)
        with self.fabric.autocast():
            return self._completer(prompt_ids, sampling)

    # -- checkpoints --------------------------------------------------------------------------
    def save_state(self, path: str | Path) -> Path:
        """Write trained weights (the adapter for LoRA), optimizer, step, pending accumulation
        and RNG states to ``path/client_state.pt``; ``load_state`` resumes bit-identically."""
        return self._serialized(save_client_state, self, Path(path))

    def load_state(self, path: str | Path) -> None:
        """Restore ``save_state`` output into a client built from the same model and LoRA."""
        self._serialized(load_client_state, self, Path(path))

    def export(self, path: str | Path, mode: str = "merged") -> Path:
        """Write a Hugging Face directory (``merged``, ``adapter`` or ``full``) for serving."""
        from autotrain_pl.models import export_model

        if self.tokenizer is None:
            raise AutotrainError("export() needs a tokenizer; build TrainingClient(model, "
                                 "tokenizer=...)")
        return self._serialized(export_model, self.model, self.tokenizer, path, mode=mode,
                                renderer=self.renderer, base_model=self.model_ref)

    # -- async --------------------------------------------------------------------------------
    def forward_backward_async(self, batch: Mapping[str, Tensor], loss_fn: Any = "ce",
                               **loss_params: Any) -> Future[ForwardBackwardResult]:
        """``forward_backward`` queued on the client's worker (see module docstring)."""
        return self._submit(self._forward_backward, batch, loss_fn, loss_params)

    def forward_backward_custom_async(self, batch: Mapping[str, Tensor], fn: CustomLossFn | str
                                      ) -> Future[ForwardBackwardResult]:
        """``forward_backward_custom`` queued on the client's worker."""
        return self._submit(self._forward_backward_custom, batch, fn)

    def forward_async(self, batch: Mapping[str, Tensor], loss_fn: Any = "ce",
                      **loss_params: Any) -> Future[ForwardBackwardResult]:
        """``forward`` queued on the client's worker."""
        return self._submit(self._forward, batch, loss_fn, loss_params)

    def optim_step_async(self, adam: AdamParams) -> Future[OptimStepResult]:
        """``optim_step`` queued on the client's worker, after every call submitted before it."""
        return self._submit(self._optim_step, adam)

    def sample_async(self, prompts: Any, sampling: Any | None = None) -> Future[list[Any]]:
        """``sample`` queued on the client's worker."""
        return self._submit(self._sample, prompts, sampling)

    def _submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        return self._worker.submit(fn, *args, **kwargs)

    def _serialized(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run now, or behind the queued async calls once the worker exists."""
        return self._worker.run(fn, *args, **kwargs)

    def close(self) -> None:
        """Finish queued calls and stop the worker thread."""
        self._worker.close()

    def __enter__(self) -> TrainingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve_loss(loss_fn: Any, loss_params: dict[str, Any]) -> tuple[Callable, dict[str, Any]]:
    """(callable, params) for a name, import path, ``{name: weight}`` composite or callable."""
    if isinstance(loss_fn, Mapping):
        return CompositeLoss(dict(loss_fn), params=loss_params or None), {}
    return get_loss(loss_fn), loss_params


def _resolve_callable(fn: Any) -> Callable:
    """A callable, or one imported from ``package.module.name`` (never eval/exec)."""
    if callable(fn):
        return fn
    if isinstance(fn, str) and "." in fn:
        target = import_object(fn, "fn")
        if callable(target):
            return target
    raise AutotrainError(f"fn={fn!r} must be a callable or an import path like 'pkg.mod.my_loss'")
