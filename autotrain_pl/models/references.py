"""Resolve a model reference: ``builtin:<name>``, a local directory, an exported run, or a hub id."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models.builtin import is_builtin, materialize_builtin

EXPORT_METADATA = "autotrain.json"
EXPORT_SUBDIR = "export"


@dataclass(frozen=True)
class ResolvedModel:
    """Where to load from and what kind of directory it is.

    Attributes:
        source: a local directory path or a hub id, as ``from_pretrained`` takes it.
        is_adapter: the directory holds a peft adapter, not full weights.
        metadata: the contents of ``autotrain.json`` for runs exported by autotrain_pl.
    """

    source: str
    is_adapter: bool = False
    metadata: dict | None = None

    @property
    def renderer_name(self) -> str | None:
        return (self.metadata or {}).get("renderer")


def _looks_like_path(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or ref.count("/") > 1 or "\\" in ref


def resolve_model_ref(ref: str) -> ResolvedModel:
    """Turn a user's reference into a loadable source; a clear error for missing paths."""
    if not isinstance(ref, str) or not ref:
        raise AutotrainError(f"model reference {ref!r} must be a non-empty string")
    if is_builtin(ref):
        return ResolvedModel(str(materialize_builtin(ref)))
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
            if (path / EXPORT_SUBDIR).is_dir():
                path = path / EXPORT_SUBDIR  # a run directory: use its final export
            else:
                raise AutotrainError(
                    f"model directory {path} has no config.json or adapter_config.json; "
                    "point to a Hugging Face model directory or an autotrain_pl run directory"
                )
        metadata_file = path / EXPORT_METADATA
        metadata = json.loads(metadata_file.read_text()) if metadata_file.exists() else None
        is_adapter = (path / "adapter_config.json").exists() and not (path / "config.json").exists()
        return ResolvedModel(str(path), is_adapter=is_adapter, metadata=metadata)
    if _looks_like_path(ref) or path.exists():
        raise AutotrainError(f"model path {ref!r} does not exist; check model_name_or_path")
    return ResolvedModel(ref)  # a hub id


def adapter_base_ref(adapter_dir: str) -> str:
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    metadata_file = Path(adapter_dir) / EXPORT_METADATA
    if metadata_file.exists():  # prefer the reference the user trained from (e.g. builtin:tiny)
        base = json.loads(metadata_file.read_text()).get("base_model")
        if base:
            return base
    return config["base_model_name_or_path"]
