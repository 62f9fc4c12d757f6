"""The fuzz suite's case count, printed at the end of the session (and written to the file named
by ``AUTOTRAIN_FUZZ_REPORT``, if set)."""

from __future__ import annotations

import json
import os

import pytest
from fuzz_harness import CASES, ENV_EXAMPLES, long_run_examples


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Nothing here is worth a second thread; the suite shares its 2 cores."""


def pytest_terminal_summary(terminalreporter) -> None:
    if not CASES:
        return
    mode = (f"{ENV_EXAMPLES}={long_run_examples()} (random)" if long_run_examples()
            else "CI profile (derandomized)")
    parts = ", ".join(f"{name} {count}" for name, count in sorted(CASES.items()))
    terminalreporter.write_line(f"fuzz: {sum(CASES.values())} inputs tried, {mode}: {parts}")
    report = os.environ.get("AUTOTRAIN_FUZZ_REPORT")
    if report:
        with open(report, "w", encoding="utf-8") as handle:
            json.dump({"total": sum(CASES.values()), "mode": mode, "by_category": dict(CASES)},
                      handle, indent=2)
