"""The ``aitrain`` command: LightningCLI for fit/validate/test/predict plus extra subcommands.

Device-aware defaults: accelerator ``auto`` (CUDA, then MPS, then CPU), precision bf16-mixed on
CUDA with bf16 and 32-true elsewhere, ``last.ckpt`` checkpointing (resume with
``--ckpt_path last``), a CSV logger in the run directory and a Rich progress bar showing loss,
lr and tokens/s. User errors print one line and exit with code 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from autotrain_pl.commands import SUBCOMMANDS
from autotrain_pl.errors import AutotrainError

USER_ERROR_EXIT_CODE = 2


def _build_cli_class():
    from jsonargparse import Namespace
    from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
    from lightning.pytorch.cli import LightningCLI

    from autotrain_pl.data import ChatDataModule
    from autotrain_pl.importing import import_object
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

        def add_arguments_to_parser(self, parser) -> None:
            # The data module takes its tokenizer from the model reference: named once.
            parser.link_arguments("model.init_args.model_name_or_path", "data.init_args.tokenizer")

        def before_instantiate_classes(self) -> None:
            config = self.config.get(str(self.subcommand), self.config)
            trainer = config.trainer
            accelerator = select_accelerator(str(trainer.accelerator))
            if trainer.precision is None:
                trainer.precision = default_precision(accelerator)
            self._add_default_callbacks_and_logger(trainer)
            self._validate_data_config(config)

        def _add_default_callbacks_and_logger(self, trainer) -> None:
            """``last.ckpt`` checkpointing, a Rich progress bar and a CSV logger in the run
            directory, unless the config brings its own."""
            callbacks = list(trainer.callbacks or [])
            given = [import_object(c.class_path, "trainer.callbacks") for c in callbacks
                     if isinstance(c, Namespace) and c.get("class_path")]
            root = trainer.default_root_dir or "runs/default"
            if not any(issubclass(cls, ModelCheckpoint) for cls in given):
                callbacks.append(Namespace(
                    class_path="lightning.pytorch.callbacks.ModelCheckpoint",
                    init_args=Namespace(dirpath=os.path.join(root, "checkpoints"),
                                        save_last=True, save_top_k=0)))
            if trainer.enable_progress_bar is not False and not any(
                issubclass(cls, ProgressBar) for cls in given
            ):
                callbacks.append(Namespace(
                    class_path="lightning.pytorch.callbacks.RichProgressBar",
                    init_args=Namespace(leave=True)))
            trainer.callbacks = callbacks
            if trainer.logger in (None, True):
                trainer.logger = Namespace(
                    class_path="lightning.pytorch.loggers.CSVLogger",
                    init_args=Namespace(save_dir=root, name="logs"))

        def _validate_data_config(self, config) -> None:
            """Build the data module first, so a bad data config fails before a model loads."""
            data = config.get("data")
            if data is None or not data.get("class_path"):
                return
            data_class = import_object(data.class_path, "data.class_path")
            init_args = data.get("init_args")
            data_class(**(init_args.as_dict() if init_args is not None else {}))

        def before_fit(self) -> None:
            self.model.run_config = self.config.get("fit").as_dict()

    return AutotrainCLI


def _user_error_in(error: BaseException) -> AutotrainError | None:
    """The AutotrainError behind ``error``: jsonargparse and Lightning wrap errors they catch."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, AutotrainError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Run ``aitrain`` with ``argv`` (without the program name); return the exit code."""
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return int(SUBCOMMANDS.get(argv[0])(argv[1:]) or 0)
        # LightningCLI reads sys.argv itself when args is None (and warns if given both).
        _build_cli_class()(args=None if from_command_line else argv)
        return 0
    except Exception as error:
        user_error = _user_error_in(error)
        if user_error is None:
            raise
        print(f"aitrain: error: {user_error}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE


def main() -> None:
    sys.exit(run_cli())
