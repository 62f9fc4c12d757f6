"""Silence the library messages a user of ``aitrain`` can do nothing about, and only those.

``quiet_known_noise()`` installs narrow filters: each one matches one message by a regular
expression, and a warning filter also by its category; a logging filter sits on the one logger
that emits the message. Everything else from the same libraries still shows. Call it once, early
(before ``bitsandbytes`` is imported, which logs at import time); calling it again changes
nothing.

What is filtered, and why the user cannot act on it:

- bitsandbytes ``Failed to load CPU gemm_4bit_forward from kernels-community``: logged at import
  on CPUs with AVX512-BF16 whenever the optional ``kernels`` package is missing, also in runs
  without any quantization (peft imports bitsandbytes);
- transformers ``is_gradient_checkpointing`` FutureWarning: peft reads the deprecated property;
- Lightning's ``LeafSpec`` FutureWarning: its own ``utilities/_pytree.py`` uses the torch class
  that torch deprecated;
- Lightning's ``💡 Tip`` lines advertising litlogger and litmodels;
- Lightning's note that it skips its default model summary, when the one configured is ours;
- ``Total length of `list` across ranks is zero``: ``ChatDataModule.val_dataloader`` returns an
  empty list on purpose when a run has no validation data (an empty ``DataLoader`` still warns);
- ``Trying to infer the `batch_size` from an ambiguous collection``: our batch dicts hold
  tensors of different leading sizes by design, and the objectives pass ``batch_size`` where an
  epoch mean depends on it.

The model summary's ``Total FLOPs: 0`` is a table row, not a message:
``autotrain_pl.callbacks.AutotrainModelSummary`` leaves it out.

``no_progress_bars_off_terminal()`` turns off the tqdm bars of ``datasets`` and ``transformers``
when stderr is a pipe or a log file, where each redraw would be appended.
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from dataclasses import dataclass
from typing import TextIO

__all__ = ["KNOWN_NOISE_LOGS", "KNOWN_NOISE_WARNINGS", "MessageFilter", "quiet_known_noise"]


@dataclass(frozen=True)
class _Warning:
    message: str  # a regular expression matched at the start of the message (warnings' rule)
    category: type[Warning]
    module: str = ""  # a regular expression for the module the warning is attributed to


@dataclass(frozen=True)
class _Log:
    loggers: tuple[str, ...]
    message: str  # a regular expression searched in the formatted message


KNOWN_NOISE_WARNINGS: tuple[_Warning, ...] = (
    _Warning(r"`is_gradient_checkpointing` is deprecated", FutureWarning,
             r"transformers\.modeling_utils"),
    _Warning(r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning,
             r"(lightning\.pytorch|pytorch_lightning)\.utilities\._pytree"),
    # rank_zero_warn attributes these to a caller up the stack, so no module rule.
    _Warning(r"Total length of `list` across ranks is zero\.", UserWarning),
    _Warning(r"Trying to infer the `batch_size` from an ambiguous collection\.", UserWarning),
)

_RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero",
                      "lightning.fabric.utilities.rank_zero",
                      "pytorch_lightning.utilities.rank_zero",
                      "lightning_fabric.utilities.rank_zero",
                      "lightning_utilities.core.rank_zero")

KNOWN_NOISE_LOGS: tuple[_Log, ...] = (
    _Log(("bitsandbytes.backends.cpu.ops",),
         r"^Failed to load CPU gemm_4bit_forward from kernels-community"),
    _Log(_RANK_ZERO_LOGGERS,
         r"^💡 Tip: For seamless cloud .*\[(litlogger|litmodels)\]\(https://pypi\.org/"),
    # Lightning's note that it skips its default summary because ours is configured.
    _Log(_RANK_ZERO_LOGGERS,
         r"^Trainer already configured with model summary callbacks: "
         r"\[<class 'autotrain_pl\.callbacks\.model_summary\.AutotrainModelSummary'>\]"),
)


class MessageFilter(logging.Filter):
    """Drops the records of one logger whose message matches ``pattern``."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to judge
            return True
        return self.pattern.search(message) is None


def quiet_known_noise() -> None:
    """Install the filters above (idempotent: a second call adds nothing)."""
    for spec in KNOWN_NOISE_WARNINGS:
        # warnings.filterwarnings replaces an equal filter instead of adding a second one.
        warnings.filterwarnings("ignore", message=spec.message, category=spec.category,
                                module=spec.module)
    for spec in KNOWN_NOISE_LOGS:
        for name in spec.loggers:
            logger = logging.getLogger(name)
            if not any(isinstance(f, MessageFilter) and f.pattern.pattern == spec.message
                       for f in logger.filters):
                logger.addFilter(MessageFilter(spec.message))


def no_progress_bars_off_terminal(stream: TextIO | None = None) -> bool:
    """Turn off ``datasets``' and ``transformers``' tqdm bars when ``stream`` (stderr) is not a
    terminal: in a pipe or a CI log each redraw is appended, and one tokenization pass becomes a
    line of hundreds of kilobytes. Our own progress bar prints spaced snapshots there instead.
    Returns whether the bars were turned off."""
    stream = sys.stderr if stream is None else stream
    if stream.isatty():
        return False
    import datasets
    from transformers.utils import logging as transformers_logging

    datasets.disable_progress_bars()
    transformers_logging.disable_progress_bar()
    return True
