"""Run ``aitrain`` in this process on a fuzzed input and check how it fails.

Every fuzzed input must end the way a user error ends (DESIGN.md, section 8): exit code 2, one line
``aitrain: error: ...`` that names the file and line (data) or the key (config), no traceback and
no logged error besides it, and all of it before a model loads. ``run_aitrain`` makes "a model
loads" visible: ``PreTrainedModel.from_pretrained`` raises ``ModelLoadReached``,
so a valid input stops there (which is how a valid input is told apart, in a fraction of a
second, without training) and a bad one that gets that far fails its test.

Hypothesis settings: ``fuzz_settings(n)`` runs ``n`` derandomized examples in CI (the same ones
every run); ``AUTOTRAIN_FUZZ_EXAMPLES=N`` runs ``N`` random examples per test instead, for a long
local run. ``CASES`` counts the inputs tried, by category; the suite prints the counts at the end.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, settings

ENV_EXAMPLES = "AUTOTRAIN_FUZZ_EXAMPLES"
#: Inputs tried in this session, by category (printed by ``conftest.pytest_terminal_summary``).
CASES: Counter[str] = Counter()
#: The longest error line we accept: a value from a huge line must not make the error huge.
MAX_ERROR_CHARS = 1000
BASE_ARGV = ["--trainer.max_steps", "1", "--trainer.accelerator", "cpu"]

settings.register_profile(
    "autotrain-fuzz-ci", deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=list(HealthCheck))
settings.register_profile(
    "autotrain-fuzz-long", deadline=None, derandomize=False, database=None, print_blob=True,
    suppress_health_check=list(HealthCheck))


def long_run_examples() -> int:
    return int(os.environ.get(ENV_EXAMPLES) or 0)


def fuzz_settings(ci_examples: int, shrink: bool = True) -> settings:
    """``ci_examples`` fixed examples, or ``AUTOTRAIN_FUZZ_EXAMPLES`` random ones."""
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target] + \
        ([Phase.shrink] if shrink else [])
    if long_run_examples():
        return settings(settings.get_profile("autotrain-fuzz-long"),
                        max_examples=long_run_examples(), phases=phases)
    return settings(settings.get_profile("autotrain-fuzz-ci"), max_examples=ci_examples,
                    phases=phases)


class ModelLoadReached(Exception):
    """Raised where a model would load: the input passed every check before it."""


@dataclass
class Outcome:
    """How one ``aitrain`` run ended."""

    argv: list[str]
    code: int | None = None
    stderr: str = ""
    reached_model_load: bool = False
    exception: BaseException | None = None
    logged_errors: list[str] = field(default_factory=list)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("aitrain: error:")]

    @property
    def error(self) -> str:
        return self.error_lines[0] if self.error_lines else ""

    def describe(self) -> str:
        head = f"argv={self.argv}\ncode={self.code} model_load={self.reached_model_load}\n"
        if self.exception is not None:
            import traceback

            head += "".join(traceback.format_exception(self.exception))[-4000:]
        return head + f"stderr:\n{self.stderr[-3000:]}\nlogged errors: {self.logged_errors}"


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()[:300]}")


#: Library loggers that do not propagate to the root logger (each prints on its own).
_LOGGERS = ("", "datasets", "transformers", "lightning", "lightning.pytorch", "lightning.fabric",
            "autotrain_pl")


@contextlib.contextmanager
def _no_model_loads() -> Iterator[None]:
    """``PreTrainedModel.from_pretrained`` raises ``ModelLoadReached`` inside the block.

    Every model load ends there: the auto classes call it, and each keeps its own copy of the
    auto ``from_pretrained``, so patching that one would miss classes created earlier (and leave
    the patch in classes created inside the block).
    """
    from transformers import PreTrainedModel

    def refuse(cls, *args, **kwargs):
        raise ModelLoadReached(f"{cls.__name__}.from_pretrained was called")

    original = PreTrainedModel.__dict__["from_pretrained"]
    PreTrainedModel.from_pretrained = classmethod(refuse)
    try:
        yield
    finally:
        PreTrainedModel.from_pretrained = original


def _in_chain(error: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def run_aitrain(argv: Sequence[str], category: str) -> Outcome:
    """``aitrain ARGV`` in this process, with stdout, stderr and error logs captured."""
    from autotrain_pl.cli import run_cli

    CASES[category] += 1
    outcome = Outcome(list(argv))
    stderr, records = io.StringIO(), _ErrorRecords()
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    for logger in loggers:
        logger.addHandler(records)
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()), \
                _no_model_loads():
            outcome.code = run_cli(list(argv))
    except BaseException as error:  # noqa: BLE001 - every ending is an outcome to judge
        if _in_chain(error, ModelLoadReached):
            outcome.reached_model_load = True
        elif isinstance(error, KeyboardInterrupt):
            raise
        else:
            outcome.exception = error
    finally:
        for logger in loggers:
            logger.removeHandler(records)
    outcome.stderr = stderr.getvalue()
    outcome.logged_errors = records.messages
    return outcome


def assert_user_error(outcome: Outcome, *, names: Sequence[str] = (),
                      line: int | tuple[int, int] | None = None, path: str | None = None) -> str:
    """The outcome is ONE user-error line, before any model loaded; returns the message.

    Args:
        names: strings the message must contain (a key, a field, the file).
        line: with ``path``, the line the message must name (or a range ``(low, high)``).
        path: the data file the message must name.
    """
    assert not outcome.reached_model_load, "a model loaded before the error\n" + \
        outcome.describe()
    assert outcome.exception is None, "raised instead of a one-line error\n" + outcome.describe()
    assert outcome.code == 2, "exit code is not 2\n" + outcome.describe()
    assert "Traceback" not in outcome.stderr, outcome.describe()
    assert len(outcome.error_lines) == 1, "not exactly one error line\n" + outcome.describe()
    last = [text for text in outcome.stderr.splitlines() if text.strip()][-1]
    assert last == outcome.error, "the error is not the last line\n" + outcome.describe()
    assert not outcome.logged_errors, "errors were logged besides it\n" + outcome.describe()
    message = outcome.error
    assert len(message) <= MAX_ERROR_CHARS, f"the error is {len(message)} characters long\n" + \
        message[:2000]
    for name in names:
        assert name in message, f"the error does not name {name!r}: {message}"
    if path is not None:
        assert path in message, f"the error does not name the file {path}: {message}"
    if line is not None:
        assert path is not None
        found = re.search(re.escape(path) + r"(?: row \d+ \(| )line (\d+)\b", message)
        assert found, f"the error does not name a line of {path}: {message}"
        low, high = (line, line) if isinstance(line, int) else line
        assert low <= int(found.group(1)) <= high, \
            f"the error names line {found.group(1)}, expected {line}: {message}"
    return message


def assert_passes_preflight(outcome: Outcome) -> None:
    """A valid input reaches the model load: every check before it passed."""
    assert outcome.reached_model_load, "a valid input was refused\n" + outcome.describe()
