"""Problems for the RL objectives, through ``ChatDataModule``.

``RLEncoding`` encodes each row as a prompt (rendered once with the generation prompt), its
reference answer and metadata, and batches them as plain lists: the objective turns every example
into an environment group (``rl.envs``) and samples the completions itself.
"""

from __future__ import annotations

import json
from typing import Any

from autotrain_pl.data.example_encoding import ExampleEncoding
from autotrain_pl.errors import AutotrainError


class RLEncoding(ExampleEncoding):
    """Prompt rows (messages, prompt/completion, questions with answers) as RL problems."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    __hash__ = None  # type: ignore[assignment]

    def encode(self, datamodule, source, split: str):
        if datamodule.kind != "sft":
            raise AutotrainError(
                f"{source.locator.name} holds {datamodule.kind} rows; RL trains on prompts "
                "(messages or prompt/completion rows, the reply or a reference column as the "
                "answer), e.g. synthetic:arithmetic"
            )
        return datamodule.encode_rows(source, "generate", split)

    def collator(self, datamodule):
        return collate_problems


def collate_problems(features: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """A batch of problems: ``{"problems": [{"prompt_ids", "messages", "reference",
    "metadata"}, ...]}`` (``messages``: the prompt as message dicts, for environments that
    render their own prompt, e.g. with tools)."""
    return {"problems": [
        {"prompt_ids": list(f["input_ids"]), "reference": f.get("reference"),
         "messages": json.loads(f["prompt_messages"]) if f.get("prompt_messages") else [],
         "metadata": json.loads(f["metadata"]) if f.get("metadata") else {}}
        for f in features
    ]}
