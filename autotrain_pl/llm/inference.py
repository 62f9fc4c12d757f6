"""``--inference-mode``: the guide's completer run as ``aitrain generate`` arguments.

``--inference-prompts`` is a file (plain text, one prompt per line, or JSONL with prompt or
messages) or comma-separated prompts; ``--inference-output`` receives one JSON record per line
(default: ``<project-name>/inference_results.jsonl``, or stdout without a project).
"""

from __future__ import annotations

from pathlib import Path

from autotrain_pl.errors import AutotrainError
from autotrain_pl.llm import values
from autotrain_pl.llm.context import Context

DTYPES = {"16-mixed": "float16", "bf16-mixed": "bfloat16", "32-true": "float32"}


def generate_argv(ctx: Context) -> list[str]:
    """The ``aitrain generate`` arguments of this command line."""
    model = ctx.setting("model")
    if not model:
        raise AutotrainError("--inference-mode needs --model (an exported run, a model folder, "
                             "or a hub id)")
    prompts = ctx.setting("inference-prompts")
    if not prompts:
        raise AutotrainError("--inference-mode needs --inference-prompts: a file with one "
                             "prompt per line, or prompts separated by commas")
    argv = ["--model", str(model)]
    name = ctx.setting("chat-format") or ctx.setting("chat-template")
    chat_format = values.chat_format(name) if name else None
    if chat_format:
        argv += ["--chat_format", chat_format]
    if ctx.given("mixed-precision"):
        try:
            argv += ["--dtype", DTYPES[values.precision(ctx.setting("mixed-precision"))]]
        except ValueError as error:
            raise AutotrainError(f"--mixed-precision: {error}") from None
    for flag, ours in (("inference-max-tokens", "max_new_tokens"),
                       ("inference-temperature", "temperature"), ("inference-top-p", "top_p"),
                       ("inference-top-k", "top_k"), ("seed", "seed")):
        value = ctx.setting(flag)
        if value is not None:
            argv += [f"--{ours}", str(value)]
    output = ctx.setting("inference-output")
    project = ctx.setting("project-name")
    if output is None and project:
        output = str(Path(project) / "inference_results.jsonl")
    argv += ["--output", str(output or "-")]
    path = Path(prompts).expanduser()
    if path.is_file():
        return [*argv, "--prompts_file", str(path)]
    items = [p.strip() for p in prompts.split(",") if p.strip()]
    if path.suffix in (".txt", ".json", ".jsonl") and len(items) == 1:
        raise AutotrainError(f"--inference-prompts {prompts}: no such file")
    return [*argv, "--", *items]
