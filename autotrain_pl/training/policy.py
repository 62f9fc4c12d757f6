"""What evaluation, callbacks and exports read of a training objective, as a protocol.

Every objective (``objectives.ObjectiveModule``) has these attributes; code below the objectives
in the dependency order (evaluation, callbacks) checks for this protocol instead of importing the
objectives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class PolicyHolder(Protocol):
    """A module holding a trained policy and its chat setup.

    Attributes:
        model: the policy (a ``transformers`` causal LM, possibly peft-wrapped).
        tokenizer: its tokenizer, with the chat format's special tokens (None before ``setup``).
        renderer: the chat format's renderer (None before ``setup``).
        model_name_or_path: the reference the policy was loaded from.
    """

    model: Any
    tokenizer: Any
    renderer: Any
    model_name_or_path: str

    def export(self, out_dir: str | Path) -> Path:
        """Write the policy as a Hugging Face directory; returns it."""
