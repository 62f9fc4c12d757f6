"""``EvaluationResult``: what an evaluation produced, saved as one JSON file and read back.

The JSON holds the metrics, per-task details, the config that produced them, the model
reference and timings, so a result file alone says what was measured and how. Non-finite
numbers (a NaN standard error of one document) are written as ``null`` to keep the file strict
JSON, and read back as NaN in ``metrics``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autotrain_pl.errors import AutotrainError

RESULT_FORMAT_VERSION = 1


@dataclass
class EvaluationResult:
    """Metrics and context of one evaluation run.

    Attributes:
        task: ``language_modeling``, ``generation`` or ``benchmark``.
        metrics: flat ``name -> value`` (``perplexity``, ``bleu``, ``acc``, ``acc_norm``...).
        details: per-task details (token counts, benchmark groups, data source...).
        config: the ``EvaluationConfig`` as a dict.
        model_ref: the model reference evaluated, when known.
        timings: seconds spent loading and running, and throughput.
        created_at: ISO-8601 UTC time of the run.
    """

    task: str
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    model_ref: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    created_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds")
    )

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": RESULT_FORMAT_VERSION, **_finite(asdict(self))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationResult:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "task" not in known or "metrics" not in known:
            raise AutotrainError("an evaluation result needs 'task' and 'metrics' fields")
        known["metrics"] = {
            name: float("nan") if value is None else value
            for name, value in known["metrics"].items()
        }
        return cls(**known)

    def save(self, path: str | Path) -> Path:
        """Write the result as indented JSON (parent folders are created)."""
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)
                        + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> EvaluationResult:
        path = Path(path).expanduser()
        if not path.is_file():
            raise AutotrainError(f"evaluation result {path} does not exist; check the path")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise AutotrainError(f"{path} is not valid JSON ({error})") from None
        if not isinstance(data, dict):
            raise AutotrainError(f"{path} does not hold an evaluation result object")
        return cls.from_dict(data)

    def summary_table(self, max_groups: int = 10) -> str:
        """A readable text table: a header line, then one row per metric (and group)."""
        title = self.details.get("benchmark") or self.task
        header = f"{title} | model: {self.model_ref or '?'}"
        facts = [f"{key}={self.details[key]}" for key in
                 ("split", "num_fewshot", "num_docs", "num_samples", "tokens")
                 if key in self.details]
        if "run_s" in self.timings:
            facts.append(f"time={self.timings['run_s']:.1f}s")
        rows = [(name, _format(value)) for name, value in self.metrics.items()]
        groups = self.details.get("groups") or {}
        shown = sorted(groups)[:max_groups]
        rows += [(f"  {group}", _format(groups[group].get("acc"))) for group in shown]
        if len(groups) > len(shown):
            rows.append((f"  ... {len(groups) - len(shown)} more groups", ""))
        width = max([len("metric"), *(len(name) for name, _ in rows)])
        lines = [header] + ([", ".join(facts)] if facts else [])
        lines += [f"{'metric':<{width}} | value", f"{'-' * width}-+-{'-' * 10}"]
        lines += [f"{name:<{width}} | {value}" for name, value in rows]
        return "\n".join(lines)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return "" if value is None else str(value)


def _finite(value: Any) -> Any:
    """Replace NaN/inf with None, recursively, so the JSON stays strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
