"""``ResumeCheckpoint``: a run can always be resumed, and losing one loses little.

``<default_root_dir>/checkpoints/last.ckpt`` (weights, optimizer, schedule, loop and data
position) is written

- every ``every_n_steps`` optimizer steps (default 100), always at a step boundary, so a resumed
  run continues exactly where the checkpoint was taken;
- after every validation run, and when training ends;
- on the first Ctrl-C or SIGTERM (a preemptible machine, SLURM's time limit, ``kill``): the run
  stops at the end of the current optimizer step (the window of an accumulated step is never
  cut), saves, prints where the checkpoint is and how to resume, and exits. Under DDP the ranks
  agree at each step boundary, so a signal that reached one rank stops them all at the same
  step. A second Ctrl-C quits at once (the last periodic checkpoint stays). Our SIGTERM handler
  replaces Lightning's for the fit, which would raise mid-window and save nothing.

Writes are atomic (a temporary file, then a rename), so a run killed while saving keeps the
previous checkpoint. The checkpoint also records what the run trained (model reference, data,
chat format, sequence length); resuming with something else warns, naming what changed. All
through public Lightning API: ``Trainer.save_checkpoint``, ``trainer.should_stop``, callback
state.
"""

from __future__ import annotations

import os
import signal
import zipfile
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from autotrain_pl.errors import AutotrainError
from autotrain_pl.training.policy import PolicyHolder

LAST = "last.ckpt"
#: Signals that stop a fit at the next optimizer step with a checkpoint, by their log name.
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
#: What a run trained, as recorded in its checkpoint: data module settings that change the data.
DATA_IDENTITY = ("data_path", "valid_path", "chat_format", "max_length", "train_on", "split",
                 "row_format")


def last_checkpoint(default_root_dir: str | Path) -> Path:
    """Where a run directory keeps the checkpoint it resumes from."""
    return Path(default_root_dir) / "checkpoints" / LAST


def check_checkpoint_file(path: str | Path) -> None:
    """A missing, truncated or corrupt checkpoint fails in one line naming it, not in a pickle
    traceback. ``torch.save`` writes a zip archive: its directory shows truncation, and the
    CRC of every member shows corruption (one read of the file, which the load reads anyway)."""
    path = Path(path)
    if not path.is_file():
        raise AutotrainError(f"--ckpt_path {path}: there is no checkpoint file there")
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        reason = f"truncated or not a checkpoint: {error}"
    else:
        if bad_member is None:
            return
        reason = f"corrupt: {bad_member} fails its checksum"
    raise AutotrainError(
        f"--ckpt_path {path}: the checkpoint is {reason}; resume from another checkpoint or "
        "start again without --ckpt_path")


def run_identity(trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
    """The model reference and the data settings of this fit."""
    identity: dict[str, Any] = {}
    if isinstance(pl_module, PolicyHolder):
        identity["model"] = pl_module.model_name_or_path
    hparams = trainer.datamodule.hparams if trainer.datamodule is not None else {}
    identity.update({f"data.{key}": hparams[key] for key in DATA_IDENTITY if key in hparams})
    return {key: value if isinstance(value, str | int | float | bool | None) else str(value)
            for key, value in identity.items()}


class ResumeCheckpoint(Callback):
    """Keep ``checkpoints/last.ckpt`` of the run fresh (see module docstring).

    Args:
        every_n_steps: optimizer steps between checkpoints (also after each validation run).
        resume_command: the command that resumes this run, printed after Ctrl-C
            (``aitrain`` passes its own command line plus ``--ckpt_path last``).
    """

    def __init__(self, every_n_steps: int = 100, resume_command: str | None = None) -> None:
        if isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int) or \
                every_n_steps < 1:
            raise AutotrainError(f"checkpoint_every_n_steps={every_n_steps!r} must be a positive "
                                 "number of optimizer steps, e.g. 100")
        self.every_n_steps = every_n_steps
        self.resume_command = resume_command
        self._last_saved_step = -1
        self._step_at_batch_start = 0
        self._stop_requested = False
        self._stop_signal = ""
        self._previous_handlers: dict[int, Any] = {}
        self._identity: dict[str, Any] = {}
        self._restored_identity: dict[str, Any] | None = None

    def path(self, trainer: Trainer) -> Path:
        return last_checkpoint(trainer.default_root_dir)

    # -- saving -------------------------------------------------------------------------------
    def save(self, trainer: Trainer) -> Path:
        """Write ``last.ckpt`` atomically; every rank takes part, rank 0 writes."""
        path = self.path(trainer)
        partial = path.with_name(f".{LAST}.partial")
        try:
            if trainer.is_global_zero:
                path.parent.mkdir(parents=True, exist_ok=True)
            trainer.save_checkpoint(partial, weights_only=False)  # optimizer too: a real resume
        except OSError as error:  # disk full, a read-only or vanished directory
            # Rank 0 alone writes, so it alone fails; the launcher (torchrun, Lightning's) then
            # ends the other ranks.
            partial.unlink(missing_ok=True)
            kept = f"the previous checkpoint {path} is intact" if path.is_file() else \
                "no earlier checkpoint exists"
            raise AutotrainError(
                f"could not write the checkpoint {path} ({error.strerror or error}); {kept}. "
                "Free disk space or choose another --trainer.default_root_dir, then resume "
                "with --ckpt_path last") from error
        trainer.strategy.barrier()
        if trainer.is_global_zero:
            os.replace(partial, path)
        self._last_saved_step = trainer.global_step
        return path

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._step_at_batch_start = trainer.global_step

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        stepped = trainer.global_step != self._step_at_batch_start
        if not stepped:  # inside an accumulation window: no checkpoint, no stop
            return
        if trainer.world_size > 1:  # a signal may have reached some ranks only
            self._stop_requested = trainer.strategy.reduce_boolean_decision(
                self._stop_requested, all=False)
        if self._stop_requested:
            trainer.should_stop = True
        elif trainer.global_step % self.every_n_steps == 0:
            self.save(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self.save(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._last_saved_step != trainer.global_step:
            self.save(trainer)
        self._restore_handlers()
        if self._stop_requested:
            path = self.path(trainer)
            how = self.resume_command or f"trainer.fit(..., ckpt_path={str(path)!r})"
            rank_zero_info(f"\nStopped at step {trainer.global_step} "
                           f"({self._stop_signal or 'signal on another rank'}). Saved {path}\n"
                           f"Resume with: {how}")
            raise KeyboardInterrupt  # Lightning's shutdown path: no export of a partial run

    # -- Ctrl-C and SIGTERM --------------------------------------------------------------------
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._stop_requested = False
        if trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps:
            rank_zero_info(f"The run already reached max_steps={trainer.max_steps}; raise "
                           "--trainer.max_steps (or max_epochs) to train further")
        for signum in STOP_SIGNALS:
            try:
                self._previous_handlers[signum] = signal.signal(signum, self._request_stop)
            except ValueError:  # not the main thread (e.g. a notebook worker): keep it as is
                pass

    def _request_stop(self, signum: int, frame: Any) -> None:
        self._stop_requested = True
        self._stop_signal = STOP_SIGNALS[signum]
        self._restore_handlers()  # a second Ctrl-C interrupts at once
        print(f"\n{self._stop_signal}: stopping after this optimizer step to save a checkpoint"
              + (" (press Ctrl-C again to quit now)" if signum == signal.SIGINT else ""),
              flush=True)

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous_handlers = {}

    def on_exception(self, trainer: Trainer, pl_module: LightningModule,
                     exception: BaseException) -> None:
        self._restore_handlers()

    # -- what the run trained -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"identity": self._identity}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored_identity = dict(state_dict.get("identity") or {})

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._identity = run_identity(trainer, pl_module)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        restored, self._restored_identity = self._restored_identity, None
        if not restored:
            return
        changed = [f"{key}: {restored.get(key)!r} -> {self._identity.get(key)!r}"
                   for key in sorted(set(restored) | set(self._identity))
                   if restored.get(key) != self._identity.get(key)]
        if changed:
            rank_zero_warn("resuming a checkpoint trained with other settings (" +
                           "; ".join(changed) + "); the weights continue, the data is new")
        self._last_saved_step = trainer.global_step
