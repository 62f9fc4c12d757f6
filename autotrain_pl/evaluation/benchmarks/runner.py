"""Run one multiple-choice benchmark: load rows, build k-shot prompts, score, aggregate.

``run_benchmark`` is ``prepare_benchmark`` (rows and prompts, no model) then ``score_benchmark``.

Prompts are plain text (no chat template), as lm-evaluation-harness scores them by default
(without ``--apply_chat_template``); that is what leaderboards built on it report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.benchmarks.base import (
    FEWSHOT_SEED,
    Benchmark,
    MultipleChoiceDoc,
    argmax,
)
from autotrain_pl.evaluation.benchmarks.loading import load_rows
from autotrain_pl.evaluation.benchmarks.registry import get_benchmark
from autotrain_pl.evaluation.benchmarks.scoring import (
    EncodedQuestion,
    LoglikelihoodScorer,
    encode_question,
)


@dataclass
class BenchmarkRun:
    """Scores of one benchmark run.

    Attributes:
        benchmark: its name.
        metrics: e.g. ``{"acc": .., "acc_stderr": .., "acc_norm": .., "acc_norm_stderr": ..}``.
        details: split, few-shot count, data source, document count, per-group scores.
        records: one per scored document: prompt, choices, log-likelihoods, prediction, reference.
    """

    benchmark: str
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PreparedBenchmark:
    """A benchmark's documents and their k-shot prompts, built once and scored any number of
    times (``score_benchmark``): the training-time benchmark callback reads and draws once and
    scores the same prompts at every evaluation.

    Attributes:
        benchmark: the definition; docs: the scored documents; contexts: one prompt per document.
        details: split, subset, num_fewshot and data source.
    """

    benchmark: Benchmark
    docs: list[MultipleChoiceDoc]
    contexts: list[str]
    details: dict[str, Any]
    _encoded: tuple[int, bool, list[EncodedQuestion]] | None = field(default=None, repr=False)

    def encode(self, tokenizer, add_bos_token: bool = False) -> list[EncodedQuestion]:
        """Token ids of every question, for ``tokenizer`` (kept for the next call)."""
        key = (id(tokenizer), bool(add_bos_token))
        if self._encoded is None or self._encoded[:2] != key:
            encoded = [encode_question(tokenizer, context, self.benchmark.continuations(doc),
                                       add_bos_token)
                       for context, doc in zip(self.contexts, self.docs, strict=True)]
            self._encoded = (*key, encoded)
        return self._encoded[2]


def prepare_benchmark(
    benchmark: str | Benchmark,
    *,
    data_path: str | None = None,
    split: str | None = None,
    subset: str | None = None,
    num_fewshot: int = 0,
    limit: int | None = None,
    fewshot_seed: int = FEWSHOT_SEED,
) -> PreparedBenchmark:
    """Load the scored documents and build their k-shot prompts (no model, no tokenizer).

    Arguments as in ``run_benchmark``. Data problems (missing files or columns, too few few-shot
    examples) fail here.
    """
    bench = get_benchmark(benchmark, fewshot_seed) if isinstance(benchmark, str) else benchmark
    if limit is not None and limit < 1:
        raise AutotrainError(f"limit={limit} must be a positive integer")
    bench.check_num_fewshot(num_fewshot)
    split = split or bench.eval_split
    subset = subset or bench.hub_subset
    rows, where = load_rows(data_path, bench.hub_path, subset, split, bench.required_columns,
                            benchmark=bench.name)
    docs = _to_docs(bench, rows[:limit] if limit else rows, where)
    pool = []
    if num_fewshot:
        fewshot_rows, fewshot_where = load_rows(
            data_path, bench.hub_path, subset, bench.fewshot_split, bench.required_columns,
            benchmark=bench.name, scored=False,
        )
        pool = _to_docs(bench, fewshot_rows, fewshot_where)
    same_split = bench.fewshot_split == split
    contexts = [bench.context(doc, bench.select_fewshot(doc, pool, num_fewshot, same_split))
                for doc in docs]
    details = {"benchmark": bench.name, "split": split, "subset": subset,
               "num_fewshot": num_fewshot, "source": where}
    return PreparedBenchmark(bench, docs, contexts, details)


def score_benchmark(
    model,
    tokenizer,
    prepared: PreparedBenchmark,
    *,
    batch_size: int = 8,
    method: str = "shared_context",
    add_bos_token: bool = False,
    max_length: int | None = None,
) -> BenchmarkRun:
    """Score ``model`` on prepared prompts by per-choice log-likelihood (eval mode, restored)."""
    bench, docs, contexts = prepared.benchmark, prepared.docs, prepared.contexts
    encoded = prepared.encode(tokenizer, add_bos_token)
    scorer = LoglikelihoodScorer(model, batch_size=batch_size, method=method, max_length=max_length)
    was_training = model.training
    model.eval()
    try:
        loglikelihoods = scorer.score(encoded)
    finally:
        model.train(was_training)
    per_doc = [bench.doc_metrics(doc, lls) for doc, lls in zip(docs, loglikelihoods, strict=True)]
    metrics, details = bench.aggregate(docs, per_doc)
    details.update(prepared.details, scoring=method,
                   context_tokens=sum(len(q.context_ids) for q in encoded))
    records = [
        {
            "index": i, "prompt": context, "choices": list(doc.choices),
            "loglikelihoods": lls, "prediction": doc.choices[argmax(lls)],
            "reference": doc.choices[doc.gold], "gold": doc.gold, "metrics": scores,
            **({"group": doc.group} if doc.group else {}),
        }
        for i, (doc, context, lls, scores) in enumerate(
            zip(docs, contexts, loglikelihoods, per_doc, strict=True)
        )
    ]
    return BenchmarkRun(bench.name, metrics, details, records)


def run_benchmark(
    model,
    tokenizer,
    benchmark: str | Benchmark,
    *,
    data_path: str | None = None,
    split: str | None = None,
    subset: str | None = None,
    num_fewshot: int = 0,
    limit: int | None = None,
    batch_size: int = 8,
    method: str = "shared_context",
    fewshot_seed: int = FEWSHOT_SEED,
    add_bos_token: bool = False,
    max_length: int | None = None,
) -> BenchmarkRun:
    """Score ``model`` on a benchmark by per-choice log-likelihood.

    Args:
        model: causal LM on its device; tokenizer: its tokenizer.
        benchmark: a name from ``available_benchmarks()`` or a ``Benchmark`` instance.
        data_path: local file/folder in the hub layout, a hub name, or None for the default hub
            dataset (see ``benchmarks.loading``).
        split: scored split (default: the benchmark's, e.g. ``test``).
        subset: dataset configuration / subfolder (default: the benchmark's, e.g. ``all``).
        num_fewshot: solved examples before each question.
        limit: score only the first ``limit`` documents of the split. The harness applies
            ``--limit`` per task, i.e. per MMLU subject; here it counts documents overall.
        batch_size: questions per forward pass.
        method: ``shared_context``, ``batched`` or ``naive`` (see ``benchmarks.scoring``).
        fewshot_seed: seed of the random few-shot sampler (the harness uses 1234).
        add_bos_token: prepend BOS to every context (harness ``add_bos_token=True``).
        max_length: longest input; default the model's ``max_position_embeddings``.
    """
    prepared = prepare_benchmark(benchmark, data_path=data_path, split=split, subset=subset,
                                 num_fewshot=num_fewshot, limit=limit, fewshot_seed=fewshot_seed)
    return score_benchmark(model, tokenizer, prepared, batch_size=batch_size, method=method,
                           add_bos_token=add_bos_token, max_length=max_length)


def _to_docs(bench: Benchmark, rows: list[dict], where: str) -> list:
    docs = []
    for index, row in enumerate(rows):
        try:
            docs.append(bench.to_doc(row))
        except (KeyError, TypeError, ValueError) as error:
            raise AutotrainError(f"{where} row {index}: {error}; fix or drop the row") from None
    return docs
