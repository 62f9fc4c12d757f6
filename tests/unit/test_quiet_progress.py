"""no_progress_bars_off_terminal: tqdm bars stay on a terminal and go in a pipe or log file."""

import io

import datasets
import pytest
from transformers.utils import logging as transformers_logging

from autotrain_pl.quiet import no_progress_bars_off_terminal


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def bars_on():
    datasets.enable_progress_bars()
    transformers_logging.enable_progress_bar()
    yield
    datasets.enable_progress_bars()
    transformers_logging.enable_progress_bar()


def test_a_terminal_keeps_the_bars(bars_on):
    assert no_progress_bars_off_terminal(_Terminal()) is False
    assert datasets.is_progress_bar_enabled() and transformers_logging.is_progress_bar_enabled()


def test_a_pipe_or_log_file_turns_them_off(bars_on):
    assert no_progress_bars_off_terminal(io.StringIO()) is True
    assert not datasets.is_progress_bar_enabled()
    assert not transformers_logging.is_progress_bar_enabled()
