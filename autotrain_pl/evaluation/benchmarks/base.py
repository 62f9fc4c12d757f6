"""Multiple-choice benchmarks: documents, prompts with k-shot examples, per-document metrics.

A benchmark turns a dataset row into a :class:`MultipleChoiceDoc` (prompt text, choice strings,
gold index) and builds the full context the way lm-evaluation-harness v0.4 does::

    description + "".join(text(ex) + target_delimiter + choice(ex) + fewshot_delimiter
                          for ex in fewshot_examples) + text(doc)

Each choice is then scored as the continuation ``target_delimiter + choice`` (``" A"``,
``" Paris"``...). Per-document metrics follow the harness's ``multiple_choice`` output type:

- ``acc``: ``argmax(loglikelihoods) == gold``.
- ``acc_norm``: ``argmax(loglikelihoods / len(choice)) == gold``. The harness documents this as
  byte-length normalization but computes ``len(choice_string)`` on the choice without the
  delimiter, i.e. Unicode characters; that equals the UTF-8 byte length for ASCII text (all of
  these benchmarks' English data). We compute exactly what the harness computes.

Ties go to the first choice (``numpy.argmax`` semantics), as in the harness.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from autotrain_pl.errors import AutotrainError

#: The harness's default few-shot seed (``simple_evaluate(fewshot_random_seed=1234)``).
FEWSHOT_SEED = 1234


@dataclass(frozen=True)
class MultipleChoiceDoc:
    """One question, ready to prompt.

    Attributes:
        text: the document's own prompt (``doc_to_text``), without few-shot examples.
        choices: the answer strings (``doc_to_choice``), without the target delimiter.
        gold: index of the correct choice.
        labels: per-choice truth labels (TruthfulQA MC2); None elsewhere.
        group: sub-task for per-group scores (the MMLU subject), or None.
    """

    text: str
    choices: tuple[str, ...]
    gold: int
    labels: tuple[int, ...] | None = None
    group: str | None = None


def argmax(values: Sequence[float]) -> int:
    """Index of the largest value, first one on ties (numpy.argmax semantics)."""
    best = 0
    for i, value in enumerate(values):
        if value > values[best]:
            best = i
    return best


def choice_metrics(doc: MultipleChoiceDoc, loglikelihoods: Sequence[float]) -> dict[str, float]:
    """``acc`` and ``acc_norm`` of one document, as the harness computes them."""
    normalized = [ll / max(len(c), 1) for ll, c in zip(loglikelihoods, doc.choices, strict=True)]
    return {
        "acc": float(argmax(loglikelihoods) == doc.gold),
        "acc_norm": float(argmax(normalized) == doc.gold),
    }


def mc2_score(labels: Sequence[int], loglikelihoods: Sequence[float]) -> float:
    """TruthfulQA MC2: probability mass of the true answers, normalized over all answers.

    The harness splits the choices at the first ``0`` label (true answers come first in the
    published data); summing over ``label == 1`` gives the same value on that data and stays
    right if a file lists them in another order. Probabilities are exp of summed log-likelihoods,
    rescaled by the largest one before exponentiating (the ratio is unchanged, no underflow).
    """
    if not any(labels) or all(labels):
        raise AutotrainError("truthfulqa mc2 needs at least one true and one false answer per row")
    top = max(loglikelihoods)
    probs = [math.exp(ll - top) for ll in loglikelihoods]
    return sum(p for p, label in zip(probs, labels, strict=True) if label) / sum(probs)


@dataclass
class Benchmark:
    """A multiple-choice benchmark definition; subclasses fill in the data layout and prompts.

    Attributes:
        name: registry name (``mmlu``, ``arc_easy``...).
        hub_path / hub_subset: the ``datasets`` name and configuration it is read from online.
        eval_split: split that is scored by default (the harness's test or validation split).
        fewshot_split: split the k-shot examples come from; None when there is none.
        fewshot_sampler: ``first_n`` (MMLU: first k dev rows of the same subject) or ``random``
            (``random.Random(1234).sample`` over the few-shot split, drawn per document in order).
        required_columns: columns every row must have.
        metric_names: the metrics reported, in order.
    """

    name: ClassVar[str] = ""
    hub_path: ClassVar[str] = ""
    hub_subset: ClassVar[str | None] = None
    eval_split: ClassVar[str] = "test"
    fewshot_split: ClassVar[str | None] = "train"
    fewshot_sampler: ClassVar[str] = "random"
    required_columns: ClassVar[tuple[str, ...]] = ()
    metric_names: ClassVar[tuple[str, ...]] = ("acc", "acc_norm")
    target_delimiter: ClassVar[str] = " "
    fewshot_delimiter: ClassVar[str] = "\n\n"
    max_fewshot: ClassVar[int | None] = None

    fewshot_seed: int = FEWSHOT_SEED
    _rng: random.Random | None = field(default=None, init=False, repr=False)
    _groups: tuple[int, dict] | None = field(default=None, init=False, repr=False)

    # -- per benchmark ------------------------------------------------------------------------
    def to_doc(self, row: Mapping[str, Any]) -> MultipleChoiceDoc:
        """Turn one dataset row into a document (``process_docs`` + ``doc_to_*`` in the harness)."""
        raise NotImplementedError

    def description(self, doc: MultipleChoiceDoc) -> str:
        """Text placed before the few-shot examples (MMLU's subject line); empty by default."""
        return ""

    def doc_metrics(self, doc: MultipleChoiceDoc, loglikelihoods: Sequence[float]
                    ) -> dict[str, float]:
        return choice_metrics(doc, loglikelihoods)

    # -- shared -----------------------------------------------------------------------------
    def check_num_fewshot(self, num_fewshot: int) -> None:
        from autotrain_pl.data.validation import option_name, option_setting

        if num_fewshot < 0:
            raise AutotrainError(f"{option_name('num_fewshot')}={num_fewshot} must be 0 or more")
        if num_fewshot and (self.fewshot_split is None or self.max_fewshot == 0):
            raise AutotrainError(
                f"{self.name} has no few-shot split (its prompt already fixes the examples); "
                f"set {option_setting('num_fewshot', 0)}"
            )

    def context(self, doc: MultipleChoiceDoc, fewshot: Sequence[MultipleChoiceDoc]) -> str:
        """The full prompt: description, k solved examples, then the question."""
        examples = "".join(
            example.text + self.target_delimiter + example.choices[example.gold]
            + self.fewshot_delimiter
            for example in fewshot
        )
        return self.description(doc) + examples + doc.text

    def continuations(self, doc: MultipleChoiceDoc) -> list[str]:
        return [self.target_delimiter + choice for choice in doc.choices]

    def select_fewshot(self, doc: MultipleChoiceDoc, pool: Sequence[MultipleChoiceDoc],
                       num_fewshot: int, same_split: bool = False) -> list[MultipleChoiceDoc]:
        """The k examples for ``doc``; call once per scored document, in document order.

        With ``same_split`` (few-shot examples drawn from the scored split) one extra example is
        drawn and ``doc`` itself is dropped, as the harness does.
        """
        if num_fewshot == 0:
            return []
        draw = num_fewshot + 1 if same_split else num_fewshot
        if self.fewshot_sampler == "first_n":
            pool = self._group_pool(pool).get(doc.group, [])
        if len(pool) < draw:
            from autotrain_pl.data.validation import option_name

            where = f" for {doc.group!r}" if self.fewshot_sampler == "first_n" else ""
            raise AutotrainError(
                f"{self.name}: {option_name('num_fewshot')}={num_fewshot} but the "
                f"{self.fewshot_split} split has only {len(pool)} examples{where}; lower it"
            )
        if self.fewshot_sampler == "first_n":
            drawn = list(pool[:draw])
        else:
            if self._rng is None:
                self._rng = random.Random(self.fewshot_seed)
            # random.sample's draw depends only on the population size, so sampling indices
            # reproduces the harness's rnd.sample(fewshot_docs, k) selection and order.
            drawn = [pool[i] for i in self._rng.sample(range(len(pool)), draw)]
        return [ex for ex in drawn if ex != doc][:num_fewshot]

    def _group_pool(self, pool: Sequence[MultipleChoiceDoc]) -> dict:
        """Few-shot pool split by group, computed once per pool (MMLU: 285 dev rows, 57 groups)."""
        if self._groups is None or self._groups[0] != id(pool):
            by_group: dict[str | None, list[MultipleChoiceDoc]] = {}
            for example in pool:
                by_group.setdefault(example.group, []).append(example)
            self._groups = (id(pool), by_group)
        return self._groups[1]

    def aggregate(self, docs: Sequence[MultipleChoiceDoc], per_doc: Sequence[Mapping[str, float]]
                  ) -> tuple[dict[str, float], dict[str, Any]]:
        """Mean of each metric over documents, its standard error, and per-group means."""
        metrics: dict[str, float] = {}
        for name in self.metric_names:
            values = [m[name] for m in per_doc]
            metrics[name] = sum(values) / len(values)
            metrics[f"{name}_stderr"] = _stderr(values)
        details: dict[str, Any] = {"num_docs": len(docs)}
        groups = sorted({d.group for d in docs if d.group is not None})
        if groups:
            by_group: dict[str, dict[str, float]] = {}
            for group in groups:
                chosen = [m for d, m in zip(docs, per_doc, strict=True) if d.group == group]
                by_group[group] = {n: sum(m[n] for m in chosen) / len(chosen)
                                   for n in self.metric_names}
                by_group[group]["num_docs"] = len(chosen)
            details["groups"] = by_group
        return metrics, details


def _stderr(values: Sequence[float]) -> float:
    """Standard error of the mean with the sample (n - 1) deviation, as the harness reports."""
    n = len(values)
    if n < 2:
        return float("nan")
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)
