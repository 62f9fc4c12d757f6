"""The ``aitrain`` command: LightningCLI for fit/validate/test/predict plus extra subcommands.

Device-aware defaults: accelerator ``auto`` (CUDA, then MPS, then CPU), precision bf16-mixed on
CUDA with bf16 and 32-true elsewhere, a resumable ``checkpoints/last.ckpt`` (``--ckpt_path last``
resumes, ``--ckpt_path auto`` resumes if there is one), a CSV logger in the run directory and a
Rich progress bar of optimizer steps. A run directory that already holds a run is not overwritten unless asked
(``--overwrite``). User errors print one line and exit with code 2.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from autotrain_pl.commands import SUBCOMMANDS
from autotrain_pl.errors import AutotrainError
from autotrain_pl.importing import import_object
from autotrain_pl.quiet import no_progress_bars_off_terminal, quiet_known_noise

USER_ERROR_EXIT_CODE = 2
LIGHTNING_SUBCOMMANDS = {
    "fit": "train a model (the main job)",
    "validate": "run one evaluation epoch on the validation data",
    "test": "run one evaluation epoch on the test data",
    "predict": "complete the predict prompts with the model",
}
EXTRA_HELP = {
    "generate": "complete prompts with a model or an exported run",
    "chat": "chat with a model in the terminal",
    "eval": "perplexity, generation metrics or benchmarks of a model",
    "sweep": "hyperparameter sweep (optuna) over a fit config",
    "llm": "the aitraining guide's flags (aitraining llm ...), run as aitrain fit",
}
#: ``--ckpt_path`` values Lightning resolves itself (ours resolves ``last`` and ``auto`` first).
LIGHTNING_CKPT_KEYWORDS = ("last", "auto", "best", "hpc", "registry")
#: What a run writes into its directory; ``--overwrite`` clears these before a new run.
RUN_ARTIFACTS = ("checkpoints", "export", "best", "logs", "plots", "metrics.jsonl")


def _build_cli_class(argv: Sequence[str] = ()):
    from jsonargparse import Namespace
    from lightning.pytorch.callbacks import ModelCheckpoint, ModelSummary, ProgressBar
    from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

    from autotrain_pl.callbacks.resume import check_checkpoint_file, last_checkpoint
    from autotrain_pl.config_errors import check_run_numbers, one_line
    from autotrain_pl.data import ChatDataModule
    from autotrain_pl.models.devices import default_precision, select_accelerator
    from autotrain_pl.objectives import ObjectiveModule

    class AutotrainCLI(LightningCLI):
        """LightningCLI with the model named once and device-aware trainer defaults."""

        def __init__(self, args: Sequence[str] | None = None, run: bool = True) -> None:
            super().__init__(
                ObjectiveModule,
                ChatDataModule,
                subclass_mode_model=True,
                subclass_mode_data=True,
                save_config_kwargs={"overwrite": True},
                trainer_defaults={"default_root_dir": "runs/default", "precision": None,
                                  "log_every_n_steps": 1},
                auto_configure_optimizers=False,
                args=args,
                run=run,
            )

        def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
            """A config error is one line naming the key and file (``config_errors``), not the
            usage block jsonargparse prints; ``--help`` prints as usual. ``--print_config``
            prints the config with the values the run will use (precision, callbacks, logger)."""
            given = list(sys.argv[1:] if args is None else args)
            printing = [a for a in given if a.split("=", 1)[0] == "--print_config"]
            printed = io.StringIO()
            try:
                with contextlib.redirect_stderr(printed), _without(printing, args):
                    super().parse_arguments(parser, args and [a for a in args if a not in printing])
            except SystemExit as done:
                text = printed.getvalue()
                if done.code in (0, None) or "error:" not in text:
                    sys.stderr.write(text)
                    raise
                message = text[text.index("error:") + len("error:"):]
                raise AutotrainError(one_line(message, argv)) from None
            sys.stderr.write(printed.getvalue())
            subcommand = self.config.get("subcommand")
            if subcommand:  # before LightningCLI seeds, reads a checkpoint or loads a model
                check_run_numbers(self.config[subcommand], argv)
                ckpt_path = self.config[subcommand].get("ckpt_path")
                if ckpt_path not in (None, *LIGHTNING_CKPT_KEYWORDS):
                    check_checkpoint_file(ckpt_path)
            if printing:
                self._apply_run_defaults(self.config[subcommand])
                resolved = yaml.safe_load(parser.dump(self.config))[subcommand]
                resolved.pop("config", None)
                print(yaml.safe_dump(resolved, sort_keys=False), end="")
                raise SystemExit(0)

        def add_arguments_to_parser(self, parser) -> None:
            # The data module takes its tokenizer from the model reference: named once.
            parser.link_arguments("model.init_args.model_name_or_path", "data.init_args.tokenizer")
            parser.add_argument("--overwrite", type=bool, default=False,
                                help="fit: replace the run already in trainer.default_root_dir")
            parser.add_argument("--checkpoint_every_n_steps", type=int, default=100,
                                help="fit: save checkpoints/last.ckpt every N optimizer steps "
                                     "(and after each validation)")

        def before_instantiate_classes(self) -> None:
            subcommand = str(self.subcommand)
            config = self.config.get(subcommand, self.config)
            resumable = self._apply_run_defaults(config)
            _check_scale_out(config)
            if subcommand == "fit":
                if resumable:
                    config.ckpt_path = self._resolve_ckpt_path(config)
                self._claim_run_dir(config, resumable)
            elif config.get("overwrite"):
                raise AutotrainError(f"--overwrite applies to aitrain fit, not {subcommand}")
            self._validate_data_config(config)

        def _apply_run_defaults(self, config) -> bool:
            """The device's precision, ``checkpoints/last.ckpt``, a Rich progress bar and a CSV
            logger in the run directory, unless the config brings its own. True when
            ``last.ckpt`` is ours."""
            trainer = config.trainer
            if trainer.precision is None:
                trainer.precision = default_precision(select_accelerator(str(trainer.accelerator)))
            callbacks = list(trainer.callbacks or [])
            given = [import_object(c.class_path, "trainer.callbacks") for c in callbacks
                     if isinstance(c, Namespace) and c.get("class_path")]
            root = trainer.default_root_dir or "runs/default"
            own_checkpoints = any(issubclass(cls, ModelCheckpoint) for cls in given)
            resumable = trainer.enable_checkpointing is not False and not own_checkpoints
            if resumable:
                callbacks.append(Namespace(
                    class_path="autotrain_pl.callbacks.ResumeCheckpoint",
                    init_args=Namespace(every_n_steps=config.get("checkpoint_every_n_steps", 100),
                                        resume_command=self._resume_command())))
            # Lightning adds a ModelCheckpoint of its own unless told not to; ours replaces it.
            trainer.enable_checkpointing = own_checkpoints
            if trainer.enable_progress_bar is not False and not any(
                issubclass(cls, ProgressBar) for cls in given
            ):
                callbacks.append(Namespace(
                    class_path="autotrain_pl.callbacks.AutotrainProgressBar"))
            if trainer.enable_model_summary is not False and not any(
                issubclass(cls, ModelSummary) for cls in given
            ):
                callbacks.append(Namespace(
                    class_path="autotrain_pl.callbacks.AutotrainModelSummary"))
            trainer.callbacks = callbacks
            if trainer.logger in (None, True):
                trainer.logger = Namespace(
                    class_path="lightning.pytorch.loggers.CSVLogger",
                    init_args=Namespace(save_dir=root, name="logs"))
            return resumable

        def _resume_command(self) -> str:
            args = list(argv)
            for flag in ("--ckpt_path", "--overwrite"):
                while flag in args:
                    index = args.index(flag)
                    del args[index:index + 2]
            return shlex.join(["aitrain", *args, "--ckpt_path", "last"])

        @staticmethod
        def _resolve_ckpt_path(config) -> str | None:
            """``last``: the run's ``last.ckpt`` (a clear error if there is none); ``auto``: it
            if it exists, else a fresh start; anything else: as given."""
            requested = config.get("ckpt_path")
            if requested not in ("last", "auto"):
                return requested
            path = last_checkpoint(config.trainer.default_root_dir or "runs/default")
            if path.is_file():
                check_checkpoint_file(path)
                return str(path)
            if requested == "auto":
                return None
            raise AutotrainError(
                f"--ckpt_path last: there is no checkpoint at {path} to resume from; run without "
                "--ckpt_path to start, or use --ckpt_path auto to resume only if one exists"
            )

        @staticmethod
        def _claim_run_dir(config, resumable: bool) -> None:
            """A new fit does not silently replace the run already in its directory."""
            root = Path(config.trainer.default_root_dir or "runs/default")
            found = [name for name in RUN_ARTIFACTS if (root / name).is_file()
                     or (root / name).is_dir() and any((root / name).iterdir())]
            if not found or config.get("ckpt_path"):
                return
            if not config.get("overwrite"):
                resume = "resume it with --ckpt_path last, " if resumable and \
                    last_checkpoint(root).is_file() else ""
                raise AutotrainError(
                    f"{root} already holds a run ({', '.join(found)}); {resume}choose a new "
                    "--trainer.default_root_dir, or pass --overwrite to replace it"
                )
            for name in found:
                path = root / name
                shutil.rmtree(path) if path.is_dir() else path.unlink()

        def _validate_data_config(self, config) -> None:
            """Build the data module first, so a bad data config fails before a model loads."""
            data = config.get("data")
            if data is None or not data.get("class_path"):
                return
            data_class = import_object(data.class_path, "data.class_path")
            init_args = data.get("init_args")
            datamodule = data_class(**(init_args.as_dict() if init_args is not None else {}))
            if not isinstance(datamodule, ChatDataModule):
                return
            model = config.get("model")
            if _rl(model):
                datamodule.preflight(mode="generate")  # prompts (and references), no replies
            elif not _distils(model):  # distillation encodes its own pairs, at setup
                datamodule.preflight()
                _check_data_for_model(model, datamodule)

        def _prepare_subcommand_kwargs(self, subcommand: str) -> dict:
            """A checkpoint loads with ``weights_only=True`` unless ``--weights_only false`` is
            given: Lightning's unset value unpickles a checkpoint URL in full (code can run)."""
            kwargs = super()._prepare_subcommand_kwargs(subcommand)
            if "weights_only" in kwargs and kwargs["weights_only"] is None:
                kwargs["weights_only"] = True
            return kwargs

        def before_fit(self) -> None:
            self.model.run_config = self.config.get("fit").as_dict()

        def fit(self, model, **kwargs) -> None:
            try:
                self.trainer.fit(model, **kwargs)
            except BaseException:
                _remove_empty_log_dir(self.trainer)
                raise

    return AutotrainCLI


def _check_scale_out(config) -> None:
    """An FSDP run on CPU, or with QLoRA, fails in one line before a model loads."""
    from autotrain_pl.models.devices import select_accelerator
    from autotrain_pl.training.strategies import check_strategy, is_fsdp

    strategy = config.trainer.get("strategy")
    if not is_fsdp(strategy):
        return
    model = config.get("model")
    init_args = (model.get("init_args") if model is not None else None) or {}
    dict_kwargs = (strategy.get("dict_kwargs") if hasattr(strategy, "get") else None) or {}
    check_strategy(strategy, accelerator=select_accelerator(str(config.trainer.accelerator)),
                   lora=init_args.get("lora"), quantization=init_args.get("quantization"),
                   use_orig_params=dict_kwargs.get("use_orig_params"))


def _objective_class(model) -> type | None:
    if model is None or not model.get("class_path"):
        return None
    return import_object(model.class_path, "model.class_path")


def _distils(model) -> bool:
    """Whether the model config distils (its data may be prompts the teacher answers)."""
    from autotrain_pl.objectives import DistillationModule

    cls = _objective_class(model)
    init_args = model.get("init_args") if cls is not None else None
    return cls is not None and (issubclass(cls, DistillationModule) or bool(
        init_args and init_args.get("use_distillation")))


def _rl(model) -> bool:
    """Whether the objective is RL: its rows are prompts (and references), with no replies."""
    from autotrain_pl.objectives.rl.base import RLObjective

    cls = _objective_class(model)
    return cls is not None and issubclass(cls, RLObjective)


def _check_data_for_model(model, datamodule) -> None:
    """The objective's own data rule, if it has one (``check_datamodule``: a reward model needs
    preference pairs), before its model loads."""
    cls = _objective_class(model)
    check = getattr(cls, "check_datamodule", None)
    if check is not None:
        check(datamodule)


@contextlib.contextmanager
def _without(options: list[str], args: Sequence[str] | None):
    """Leave ``options`` out of the command line LightningCLI reads (``sys.argv`` when ``args``
    is None)."""
    if args is not None or not options:
        yield
        return
    saved = sys.argv
    sys.argv = [arg for arg in saved if arg not in options]
    try:
        yield
    finally:
        sys.argv = saved


def _remove_empty_log_dir(trainer) -> None:
    """A fit that failed before logging anything leaves no empty ``logs/version_N`` behind."""
    for logger in trainer.loggers:
        log_dir = Path(logger.log_dir) if logger.log_dir else None
        if log_dir is None or not log_dir.is_dir():
            continue
        if not any(path.is_file() and path.stat().st_size > 0 and path.name != "hparams.yaml"
                   for path in log_dir.rglob("*")):
            shutil.rmtree(log_dir, ignore_errors=True)
            with contextlib.suppress(OSError):  # ``logs/`` itself, if that was its only run
                log_dir.parent.rmdir()


def _user_error_in(error: BaseException) -> AutotrainError | None:
    """The AutotrainError behind ``error``: jsonargparse and Lightning wrap errors they catch."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, AutotrainError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _top_level_help() -> str:
    from autotrain_pl import __version__

    rows = {**LIGHTNING_SUBCOMMANDS, **{name: EXTRA_HELP.get(name, "") for name in
                                        SUBCOMMANDS.names()}}
    width = max(map(len, rows))
    lines = [f"usage: aitrain {{{','.join(rows)}}} ...", "",
             f"autotrain_pl {__version__}: post-training for language models on Lightning.", "",
             "subcommands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in rows.items()]
    lines += ["", "Run `aitrain <subcommand> --help` for its options; `aitrain --version`."]
    return "\n".join(lines)


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Run ``aitrain`` with ``argv`` (without the program name); return the exit code."""
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    quiet_known_noise()  # before bitsandbytes is imported: it logs at import time
    if from_command_line:  # not for tests and library callers, whose stderr is theirs
        no_progress_bars_off_terminal()
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_level_help(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else USER_ERROR_EXIT_CODE
    if argv[0] == "--version":
        from autotrain_pl import __version__

        print(f"aitrain (autotrain_pl) {__version__}")
        return 0
    try:
        if argv[0] in SUBCOMMANDS:
            return int(SUBCOMMANDS.get(argv[0])(argv[1:]) or 0)
        from autotrain_pl.data.validation import data_option_spelling, spell_options

        # Data hints name the options as this command types them (data.init_args.max_length).
        with spell_options(data_option_spelling("data.init_args.")):
            # LightningCLI reads sys.argv itself when args is None (and warns if given both).
            _build_cli_class(argv)(args=None if from_command_line else argv)
        return 0
    except SystemExit as done:  # --help, --print_config, Lightning's Ctrl-C shutdown
        return done.code if isinstance(done.code, int) else int(done.code is not None)
    except Exception as error:
        user_error = _user_error_in(error)
        if user_error is None:
            raise
        print(f"aitrain: error: {user_error}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE


def main() -> None:
    sys.exit(run_cli())
