"""An ``aitrain llm`` command line -> the ``aitrain fit`` config it means (or the sweep over it,
or the ``aitrain generate`` call of ``--inference-mode``).

There is no second training path: ``aitrain llm`` writes this config and runs ``aitrain fit`` on
it, and ``--print-config`` prints it, so ``aitrain llm ... --print-config > x.yaml`` and
``aitrain fit --config x.yaml`` are the same run.

Order: read the flags (``argv``), decide the trainer and switches (``context``), refuse what does
not apply or is not supported, then write every key (one-to-one keys from the flag table, then
the sections), with the guide's defaults under what the user typed.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from autotrain_pl.errors import AutotrainError
from autotrain_pl.llm import loss, sections
from autotrain_pl.llm.argv import parse_argv
from autotrain_pl.llm.build import ConfigBuilder
from autotrain_pl.llm.context import Context
from autotrain_pl.llm.flags import BY_NAME, FLAGS, INFERENCE_FLAGS
from autotrain_pl.llm.spec import Flag

#: Where ``aitrain llm`` writes the config it runs (inside ``--project-name``).
CONFIG_NAME = "llm_config.yaml"
SWEEP_CONFIG_NAME = "llm_sweep.yaml"


@dataclass
class LlmRun:
    """What a command line asks for.

    Attributes:
        mode: ``fit``, ``sweep``, ``inference`` or ``help``.
        project: the ``--project-name`` folder.
        config: the ``aitrain fit`` config (fit and sweep).
        sweep: the ``aitrain sweep`` settings (sweep; ``base_config`` is ``config``).
        generate_argv: the ``aitrain generate`` arguments (inference).
        print_config: print instead of running.
        help_trainer: with ``--help``, list the flags of this trainer only.
        argv: the command line, for the config's header.
    """

    mode: str
    project: str | None = None
    config: dict[str, Any] | None = None
    sweep: dict[str, Any] | None = None
    generate_argv: list[str] | None = None
    print_config: bool = False
    help_trainer: str | None = None
    argv: list[str] = field(default_factory=list)

    def header(self) -> str:
        return f"# aitrain llm {shlex.join(self.argv)}\n"

    def fit_yaml(self) -> str:
        return self.header() + yaml.safe_dump(self.config, sort_keys=False)

    def sweep_yaml(self) -> str:
        return self.header() + yaml.safe_dump(self.sweep, sort_keys=False)

    def printed(self) -> str:
        """What ``--print-config`` prints: the fit config, the sweep config (its base inline), or
        the ``aitrain generate`` command."""
        if self.mode == "inference":
            return shlex.join(["aitrain", "generate", *(self.generate_argv or [])]) + "\n"
        return self.sweep_yaml() if self.mode == "sweep" else self.fit_yaml()


def translate(argv: Sequence[str]) -> LlmRun:
    """The run an ``aitrain llm`` command line asks for; a user error raises ``AutotrainError``
    with one line that names the flag."""
    args = parse_argv(argv)
    argv = _without_print_config(argv)
    if args.help:
        return LlmRun("help", help_trainer=args.value("preview-trainer") or
                      args.value("help-trainer") or args.value("trainer"), argv=list(argv))
    for name in ("preview-trainer", "help-trainer"):
        if args.given(name):
            raise AutotrainError(f"--{name} filters --help; add --help, or use --trainer to "
                                 "choose the trainer")
    ctx = Context.of(args)
    check_flags(ctx)
    print_config = bool(args.value("print-config"))
    if ctx.on("inference-mode"):
        from autotrain_pl.llm.inference import generate_argv

        return LlmRun("inference", project=args.value("project-name"),
                      generate_argv=generate_argv(ctx), print_config=print_config,
                      argv=list(argv))
    project = args.value("project-name")
    if not project:
        raise AutotrainError("--project-name is required: the run folder (its export lands in "
                             "<project-name>/export)")
    for name in ("model",):
        if not args.value(name):
            raise AutotrainError(f"--{name} is required (a hub id, a local folder, an exported "
                                 "run, or builtin:tiny|mini|small)")
    builder = ConfigBuilder()
    sections.objective(builder, ctx)
    set_keys(builder, ctx)
    builder.set("trainer.default_root_dir", project, "--project-name")
    sections.data(builder, ctx)
    sections.columns(builder, ctx)
    sections.max_length(builder, ctx)
    sections.chat_format(builder, ctx)
    sections.seed(builder, ctx)
    sections.distillation(builder, ctx)
    sections.rl(builder, ctx)
    loss.objective_loss(builder, ctx)
    sections.steps(builder, ctx)
    sections.logger(builder, ctx, project)
    sections.checkpoints(builder, ctx)
    sections.evaluation(builder, ctx)
    config = ordered(builder.config)
    run = LlmRun("fit", project=project, config=config, print_config=print_config,
                 argv=list(argv))
    if ctx.on("use-sweep"):
        from autotrain_pl.llm.sweep import sweep_settings

        run.mode = "sweep"
        run.sweep = sweep_settings(ctx, builder, project)
        run.config = run.sweep["base_config"]
    return run


def _without_print_config(argv: Sequence[str]) -> list[str]:
    """The command line as the config's header records it: the run, not the printing."""
    kept: list[str] = []
    for token in argv:
        if token.split("=", 1)[0].replace("_", "-") == "--print-config":
            kept.append("\0")
        elif kept and kept[-1] == "\0" and token.lower() in ("true", "false", "1", "0", "yes",
                                                            "no"):
            kept[-1] = "\0"
        else:
            kept.append(token)
    return [token for token in kept if token != "\0"]


def check_flags(ctx: Context) -> None:
    """Refuse, in one line naming the flag, what is not supported, what does not apply to the
    trainer, and what needs a switch that is off."""
    inference = ctx.on("inference-mode")
    for name, value in ctx.args.values.items():
        flag = BY_NAME[name]
        typed = ctx.args.spelled[name]
        if flag.refuses(value):
            shown = "" if flag.kind == "bool" else f" {value}"
            raise AutotrainError(f"{typed}{shown}: not supported: {flag.refused}")
        if inference:
            if name not in INFERENCE_FLAGS:
                raise AutotrainError(f"{typed} applies to training, not --inference-mode")
            continue
        if not flag.applies_to(ctx.trainer):
            trainers = "/".join(sorted(flag.trainers or ()))
            raise AutotrainError(f"{typed} applies to --trainer {trainers}, not --trainer "
                                 f"{ctx.trainer}")
        if flag.needs and not ctx.on(flag.needs):
            if flag.needs == "use-distillation" and ctx.trainer not in ("sft", "default"):
                raise AutotrainError(f"{typed} applies to distillation (--trainer sft "
                                     f"--use-distillation, or --trainer distillation), not "
                                     f"--trainer {ctx.trainer}")
            raise AutotrainError(f"{typed} applies with --{flag.needs}; add --{flag.needs} or "
                                 f"remove {typed}")


def set_keys(builder: ConfigBuilder, ctx: Context) -> None:
    """Every flag with a config key of its own: the typed value, else the guide's default."""
    for flag in FLAGS:
        key = flag.key_for(ctx.trainer)
        if key is None:
            continue
        if ctx.given(flag.name):
            value, explicit = ctx.args.value(flag.name), True
        elif ctx.default_applies(flag):
            value, explicit = flag.default, False
        else:
            continue
        builder.set(key, convert(flag, value), f"--{flag.name}", explicit)


def convert(flag: Flag, value: Any) -> Any:
    """``value`` as our config value, or a one-line error naming the flag."""
    if flag.convert is None:
        return value
    try:
        return flag.convert(value)
    except ValueError as error:
        raise AutotrainError(f"--{flag.name} {value}: {error}") from None


#: The order of a fit config's sections, as ``aitrain fit --print_config`` prints them.
SECTION_ORDER = ("seed_everything", "model", "data", "trainer")


def ordered(config: dict[str, Any]) -> dict[str, Any]:
    """The config with its sections in the usual order (class_path before init_args)."""
    result = {key: config[key] for key in SECTION_ORDER if key in config}
    result.update({k: v for k, v in config.items() if k not in result})
    for section in ("model", "data"):
        part = result.get(section)
        if isinstance(part, dict) and "class_path" in part:
            result[section] = {"class_path": part["class_path"],
                               **{k: v for k, v in part.items() if k != "class_path"}}
    return result
