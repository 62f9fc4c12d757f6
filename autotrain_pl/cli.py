"""The ``aitrain`` command: LightningCLI for fit/validate/test/predict plus extra subcommands.

Device-aware defaults: accelerator ``auto`` (CUDA, then MPS, then CPU), precision bf16-mixed on
CUDA with bf16 and 32-true elsewhere, ``last.ckpt`` checkpointing (resume with
``--ckpt_path last``), a CSV logger in the run directory and a Rich progress bar showing loss,
lr and tokens/s. User errors print one line and exit with code 2.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from autotrain_pl.errors import AutotrainError

#: Extra subcommands: name -> "module:function" taking argv and returning an exit code.
EXTRA_COMMANDS: dict[str, str] = {
    "generate": "autotrain_pl.generation.commands:generate_command",
    "chat": "autotrain_pl.generation.commands:chat_command",
    "eval": "autotrain_pl.evaluation.commands:eval_command",
}
USER_ERROR_EXIT_CODE = 2


def _build_cli_class():
    from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
    from lightning.pytorch.cli import LightningCLI
    from lightning.pytorch.loggers import CSVLogger

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

        def add_arguments_to_parser(self, parser) -> None:
            # The data module takes its tokenizer from the model reference: named once.
            parser.link_arguments("model.init_args.model_name_or_path", "data.init_args.tokenizer")

        def before_instantiate_classes(self) -> None:
            config = self.config.get(str(self.subcommand), self.config)
            trainer = config.trainer
            accelerator = select_accelerator(str(trainer.accelerator))
            if trainer.precision is None:
                trainer.precision = default_precision(accelerator)
            self._validate_data_config(config)

        def _validate_data_config(self, config) -> None:
            """Build the data module first, so a bad data config fails before a model loads."""
            data = config.get("data")
            if data is None or not data.get("class_path"):
                return
            module_name, _, class_name = data.class_path.rpartition(".")
            data_class = getattr(importlib.import_module(module_name), class_name)
            init_args = data.get("init_args")
            data_class(**(init_args.as_dict() if init_args is not None else {}))

        def _instantiate_trainer(self, config: dict[str, Any], callbacks: list) -> Any:
            user_callbacks = list(config.get("callbacks") or [])
            root = config.get("default_root_dir") or "runs/default"
            if not any(isinstance(c, ModelCheckpoint) for c in user_callbacks):
                callbacks.append(ModelCheckpoint(dirpath=os.path.join(root, "checkpoints"),
                                                 save_last=True, save_top_k=0))
            if config.get("enable_progress_bar", True) is not False and not any(
                isinstance(c, RichProgressBar) for c in user_callbacks
            ):
                callbacks.append(RichProgressBar(leave=True))
            if config.get("logger") in (None, True):
                config["logger"] = CSVLogger(save_dir=root, name="logs")
            return super()._instantiate_trainer(config, callbacks)

        def before_fit(self) -> None:
            self.trainer.autotrain_run_config = self.config.get("fit").as_dict()

    return AutotrainCLI


def _load_extra_command(name: str) -> Callable[[list[str]], int]:
    module_name, _, function_name = EXTRA_COMMANDS[name].partition(":")
    return getattr(importlib.import_module(module_name), function_name)


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
        if argv and argv[0] in EXTRA_COMMANDS:
            return int(_load_extra_command(argv[0])(argv[1:]) or 0)
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
