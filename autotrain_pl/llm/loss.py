"""--custom-loss, --custom-loss-weights, --forward-backward-loss-fn and
--forward-backward-custom-fn as SFT's ``loss``: a registered loss, a {name: weight} mix, or a
loss function by import path (user code is imported, never ``eval``-ed)."""

from __future__ import annotations

from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.llm import values
from autotrain_pl.llm.build import ConfigBuilder
from autotrain_pl.llm.context import Context

M = "model.init_args."


def objective_loss(b: ConfigBuilder, ctx: Context) -> None:
    """--custom-loss, --forward-backward-loss-fn and --forward-backward-custom-fn as SFT's
    ``loss``: a registered name, a {name: weight} mix, or an import path (never eval)."""
    custom, weights = ctx.args.value("custom-loss"), ctx.args.value("custom-loss-weights")
    fb_name, fb_fn = ctx.args.value("forward-backward-loss-fn"), \
        ctx.args.value("forward-backward-custom-fn")
    if fb_fn is not None:
        try:
            path = values.import_path(fb_fn)
        except ValueError as error:
            raise AutotrainError(f"--forward-backward-custom-fn {fb_fn!r}: {error}") from None
        if fb_name not in (None, "custom"):
            raise AutotrainError(f"--forward-backward-loss-fn {fb_name} and "
                                 "--forward-backward-custom-fn both name the loss; keep one")
        fb_spec: Any = path
    elif fb_name == "custom":
        raise AutotrainError("--forward-backward-loss-fn custom needs "
                             "--forward-backward-custom-fn my_pkg.losses:my_loss")
    else:
        fb_spec = None if fb_name is None else _loss_name(fb_name, "--forward-backward-loss-fn")
    spec = _custom_loss(custom, weights) if custom is not None or weights is not None else None
    if spec is not None and fb_spec is not None:
        raise AutotrainError("--custom-loss and --forward-backward-loss-fn/custom-fn both set "
                             "the loss; keep one")
    spec = spec if spec is not None else fb_spec
    if spec is None:
        return
    _check_loss_terms(spec)
    b.set(f"{M}loss", spec, "--custom-loss" if custom is not None else
          "--forward-backward-loss-fn")


def _loss_name(name: str, flag: str) -> str:
    key = name.strip()
    if key in ("cross_entropy", "ce"):
        return "ce"
    if key in ("importance_sampling", "ppo"):
        raise AutotrainError(f"{flag} {key}: needs advantages from sampled rollouts, which "
                             "supervised rows do not have; use --trainer ppo or grpo, or "
                             f"TrainingClient.forward_backward(loss_fn='{key}') from Python")
    return key


def _custom_loss(custom: str | None, weights: Any) -> Any:
    """The guide's shapes: a name, ``composite`` with JSON weights, a JSON {name: weight}
    object, or ``a,b`` with a JSON list of weights."""
    text = (custom or "composite").strip()
    if text.startswith("{"):
        import json

        try:
            spec = json.loads(text)
        except json.JSONDecodeError as error:
            raise AutotrainError(f"--custom-loss: not valid JSON ({error.msg})") from None
        if weights is not None:
            raise AutotrainError("--custom-loss is already a {name: weight} object; drop "
                                 "--custom-loss-weights")
        return spec
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["composite"]:
        if not isinstance(weights, dict):
            raise AutotrainError("--custom-loss composite needs --custom-loss-weights as a JSON "
                                 "object of loss name to weight, e.g. '{\"ce\": 1.0, "
                                 "\"entropy\": -0.01}'")
        return dict(weights)
    names = [_loss_name(n, "--custom-loss") for n in names]
    if weights is None:
        return names[0] if len(names) == 1 else dict.fromkeys(names, 1.0)
    if isinstance(weights, list) and len(weights) == len(names):
        return dict(zip(names, weights, strict=True))
    if isinstance(weights, dict) and set(weights) == set(names):
        return dict(weights)
    raise AutotrainError(f"--custom-loss-weights {weights}: give one weight per loss in "
                         f"--custom-loss ({', '.join(names)}), as a list or an object")


def _check_loss_terms(spec: Any) -> None:
    """Registered names and import paths only, checked before anything loads."""
    from autotrain_pl.losses import available_losses

    terms = [spec] if isinstance(spec, str) else list(spec)
    known = set(available_losses())
    for term in terms:
        if not isinstance(term, str) or ("." not in term and term not in known):
            raise AutotrainError(f"loss {term!r} is not a registered loss; use one of "
                                 f"{', '.join(sorted(known))}, or an import path")
