"""Which head a loaded model carries: a language-model head or a scalar reward head.

``load_model(ref, head="reward")`` loads any causal base as ``AutoModelForSequenceClassification``
with one label (``LlamaForSequenceClassification`` for the builtins): the decoder's weights come
from the checkpoint and a new ``score`` projection (hidden size -> 1) is initialised, as TRL's
``RewardTrainer`` does. LoRA on such a model uses peft's ``SEQ_CLS`` task, which trains the
``score`` head in full (``modules_to_save``), and exports fold it in like any other weight.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator

from autotrain_pl.errors import AutotrainError

HEADS = ("lm", "reward")
#: peft's task type per head (it decides which modules train in full and how "all-linear" reads).
PEFT_TASK_TYPES = {"lm": "CAUSAL_LM", "reward": "SEQ_CLS"}
#: Names peft trains in full on a ``SEQ_CLS`` model; an adapter config lists them once per save.
CLASSIFIER_MODULES = ("classifier", "score")

# transformers' load report when a causal checkpoint loads into a sequence classifier: the new
# ``score`` head is missing (it is initialised) and an untied ``lm_head`` is unexpected (dropped).
_EXPECTED_ROW = re.compile(r"^\s*(score\.weight\s*\|\s*MISSING|lm_head\.\S*\s*\|\s*UNEXPECTED)\b")
_TABLE_ROW = re.compile(r"^\s*[\w.\-]+\s*\|\s*[A-Z]+\b")


def check_head(head: str) -> str:
    if head not in HEADS:
        raise AutotrainError(f"head={head!r} is not known; use one of: {', '.join(HEADS)}")
    return head


def auto_model_class(head: str):
    """The ``transformers`` auto class that loads ``head``."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    return AutoModelForSequenceClassification if check_head(head) == "reward" else \
        AutoModelForCausalLM


def head_load_options(head: str) -> dict:
    """Extra ``from_pretrained`` keyword arguments for ``head``."""
    return {"num_labels": 1} if check_head(head) == "reward" else {}


def unwrapped(model):
    """The ``transformers`` model inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def head_of(model) -> str:
    """``"reward"`` for a one-label sequence classifier (peft-wrapped or not), else ``"lm"``."""
    base = unwrapped(model)
    is_classifier = type(base).__name__.endswith("ForSequenceClassification")
    return "reward" if is_classifier and getattr(base.config, "num_labels", None) == 1 else "lm"


class _NewHeadReport(logging.Filter):
    """Drops transformers' load report when its only rows are the expected head swap."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "LOAD REPORT" not in message:
            return True
        rows = [line for line in message.splitlines() if _TABLE_ROW.match(line)]
        return not rows or not all(_EXPECTED_ROW.match(line) for line in rows)


@contextlib.contextmanager
def quiet_new_head_report(head: str) -> Iterator[None]:
    """While loading ``head="reward"`` from a causal checkpoint, hide the report that lists only
    the new ``score`` head and the dropped ``lm_head``; any other key still shows."""
    if head != "reward":
        yield
        return
    logger = logging.getLogger("transformers.modeling_utils")
    report_filter = _NewHeadReport()
    logger.addFilter(report_filter)
    try:
        yield
    finally:
        logger.removeFilter(report_filter)
