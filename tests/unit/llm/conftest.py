"""Helpers of the ``aitrain llm`` translation tests: a data folder laid out as the guide's
``./data`` and the fit config a command line becomes."""

import json
from pathlib import Path

import pytest
from llm_cli_helpers import base_argv

from autotrain_pl.llm import translate


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """``train.jsonl`` and ``valid.jsonl`` of one chat each."""
    row = {"messages": [{"role": "user", "content": "Hi"},
                        {"role": "assistant", "content": "Hello"}]}
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("train", "valid"):
        (folder / f"{name}.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def llm_config(data_dir, tmp_path):
    """``llm_config(*flags)``: the fit config of ``aitrain llm --model gpt2 --data-path <data>
    --project-name <tmp>/run *flags``."""

    def make(*flags: str, data: Path | None = None) -> dict:
        return translate(base_argv(data or data_dir, tmp_path) + [str(f) for f in flags]).config

    return make
