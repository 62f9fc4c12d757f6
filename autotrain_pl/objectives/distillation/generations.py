"""Teacher-written replies, generated once and cached, and the cache layout of teacher logits.

``trained_token_counts`` gives the rows per example of the teacher-logit cache
(``training.FrozenValueCache``, one row per trained token).

Generation cache. Teacher replies (``response_source: teacher``) are written to a JSONL file
whose first line records the fingerprint and the generation settings; it is reused while the
fingerprint (teacher prompts, teacher, sampling settings) matches and regenerated otherwise.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1


def trained_token_counts(dataset, weights_key: str = "teacher_loss_weights") -> list[int]:
    """Trained targets per row, as ``select_trained_tokens`` counts them (position 0 never)."""
    counts = []
    for chunk in dataset.select_columns([weights_key]).iter(batch_size=1024):
        counts.extend(sum(1 for w in weights[1:] if w != 0) for weights in chunk[weights_key])
    return counts


# -- generation cache ---------------------------------------------------------------------------
def load_generations(path: str | Path, fingerprint: str, count: int) -> list[dict] | None:
    """The cached replies if ``path`` holds a complete file for ``fingerprint``, else ``None``."""
    path = Path(path)
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as handle:
        try:
            header = json.loads(handle.readline())
            rows = [json.loads(line) for line in handle if line.strip()]
        except json.JSONDecodeError:
            return None
    if header.get("fingerprint") != fingerprint or len(rows) != count:
        return None
    return rows


def save_generations(path: str | Path, header: dict[str, Any], rows: Sequence[dict]) -> None:
    """Write the header line and one line per reply, atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(header, ensure_ascii=False, default=str) + "\n")
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
