"""Metrics must give the same result when the data is split over ranks.

The default test runs torchmetrics' own sync code in one process, with a fake gather that hands
each metric the other "rank's" states, and fakes `all_gather_object` for the string-gathering
label metrics. A real two-process gloo run of the same check takes ~20 s of
imports on this CPU, so it only runs with AUTOTRAIN_PL_DDP_TESTS=1.
"""

import multiprocessing
import os

import pytest
import torch
import torch.distributed as dist
from pytest import approx
from torchmetrics import Metric

from autotrain_pl.evaluation.metrics import build_metric_collection

NAMES = [
    "perplexity", "exact_match", "token_f1", "f1", "meteor", "rouge1", "rougeL", "rougeLsum",
    "chrf", "chrf++", "accuracy", "f1_macro", "bertscore",
]  # fmt: skip
PREDICTIONS = ["the cat sat", "a dog\nran home", "yes", "no", "Maybe", "the end"]
REFERENCES = [["the cat sat down"], ["the dog\nran home", "dog"], ["yes"], ["yes"], ["maybe"], ["an end"]]  # fmt: skip
NLL = torch.tensor([[1.0, 2.0, 3.0], [0.5, 4.0, 1.5]])
WEIGHTS = torch.tensor([[1.0, 0.0, 0.5], [1.0, 1.0, 0.25]])
SHARDS = {0: slice(0, 4), 1: slice(4, 6)}  # uneven on purpose
LABEL_METRICS = ("accuracy", "f1_macro")


def _updated_metrics(rows: list[int], shard: slice, bert_dir: str) -> dict:
    metrics = build_metric_collection(
        NAMES, metric_kwargs={"bertscore": {"model_name_or_path": bert_dir}}
    )
    for name, metric in metrics.items():
        if metric.kind == "token":
            if rows:
                metric.update_from_token_nll(NLL[rows], WEIGHTS[rows])
        elif name in LABEL_METRICS:  # class labels: one reference each
            metric.update(PREDICTIONS[shard], [refs[0] for refs in REFERENCES[shard]])
        else:
            metric.update(PREDICTIONS[shard], REFERENCES[shard])
    return metrics


def _compute(metrics: dict) -> dict[str, float]:
    results: dict[str, float] = {}
    for name, metric in metrics.items():
        if metric.kind == "token":
            results[name] = float(metric.compute())
        else:
            results.update(metric.compute())
    return results


def _fake_two_rank_sync(first: Metric, second: Metric) -> None:
    """Make `first.compute()` run torchmetrics' real sync, with `second` as the other rank.

    `second` is synced once with a recording gather (torchmetrics prepares the states the same
    way for both), then `first` gathers its own tensor plus the recorded one, in the same order.
    """
    recorded: list[torch.Tensor] = []

    def record(tensor: torch.Tensor, group=None) -> list[torch.Tensor]:
        recorded.append(tensor.clone())
        return [tensor, tensor]

    second.dist_sync_fn, second.distributed_available_fn = record, lambda: True
    second.compute()
    replay = iter(recorded)

    def gather(tensor: torch.Tensor, group=None) -> list[torch.Tensor]:
        return [tensor, next(replay)]

    first.dist_sync_fn, first.distributed_available_fn = gather, lambda: True


@pytest.mark.parametrize(
    ("rows", "shards"),
    [(([0], [1]), (SHARDS[0], SHARDS[1])), (([0, 1], []), (slice(0, 6), slice(0, 0)))],
    ids=["uneven", "one-rank-empty"],
)
def test_synced_rank_states_equal_single_process(tiny_bert_dir, monkeypatch, rows, shards):
    expected = _compute(_updated_metrics([0, 1], slice(0, 6), tiny_bert_dir))
    rank0 = _updated_metrics(rows[0], shards[0], tiny_bert_dir)
    rank1 = _updated_metrics(rows[1], shards[1], tiny_bert_dir)
    for name in NAMES:
        if name in LABEL_METRICS:
            continue
        first, second = rank0[name], rank1[name]
        if name == "perplexity":
            _fake_two_rank_sync(first, second)
        else:
            _fake_two_rank_sync(first.metric, second.metric)
    results = _compute({k: m for k, m in rank0.items() if k not in LABEL_METRICS})

    # Label metrics without a label set gather strings with all_gather_object at compute().
    other_rank = {}
    for name in LABEL_METRICS:
        other_rank[id(rank0[name]._predictions)] = rank1[name]._predictions
        other_rank[id(rank0[name]._references)] = rank1[name]._references

    def fake_all_gather_object(output: list, obj: list) -> None:
        output[:] = [obj, other_rank[id(obj)]]

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 2)
    monkeypatch.setattr(dist, "all_gather_object", fake_all_gather_object)
    results.update(_compute({k: rank0[k] for k in LABEL_METRICS}))
    assert results == approx(expected, abs=1e-5)


def _worker(rank: int, store_path: str, bert_dir: str, queue) -> None:
    try:
        dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=2)
        queue.put((rank, _compute(_updated_metrics([rank], SHARDS[rank], bert_dir))))
        dist.destroy_process_group()
    except BaseException as error:  # report instead of leaving the parent waiting
        queue.put((rank, repr(error)))


@pytest.mark.skipif(
    os.environ.get("AUTOTRAIN_PL_DDP_TESTS") != "1" or not dist.is_available(),
    reason="slow (~20 s of imports in two processes); set AUTOTRAIN_PL_DDP_TESTS=1",
)
def test_two_gloo_ranks_equal_single_process(tiny_bert_dir, tmp_path):
    expected = _compute(_updated_metrics([0, 1], slice(0, 6), tiny_bert_dir))
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    store = str(tmp_path / "store")
    workers = [
        context.Process(target=_worker, args=(rank, store, tiny_bert_dir, queue))
        for rank in range(2)
    ]
    for worker in workers:
        worker.start()
    try:
        outputs = dict(queue.get(timeout=120) for _ in workers)
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    for rank in range(2):
        assert isinstance(outputs[rank], dict), outputs[rank]
        assert outputs[rank] == approx(expected, abs=1e-5)
