"""Helpers of the ``aitrain llm`` translation tests (a module of its own: ``conftest`` is not
importable by name when several test folders are collected together)."""

from pathlib import Path


def base_argv(data: Path, tmp_path: Path) -> list[str]:
    """``--model gpt2 --data-path <data> --project-name <tmp>/run``: the guide's basics."""
    return ["--model", "gpt2", "--data-path", str(data), "--project-name",
            str(tmp_path / "run")]


def init(config: dict, section: str = "model") -> dict:
    """The ``init_args`` of a config section."""
    return config[section]["init_args"]
