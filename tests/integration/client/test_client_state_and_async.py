"""Checkpoints resume bit-identically; async calls run in order and equal sync ones."""

import threading

import pytest
import torch
from client_test_helpers import make_batches

from autotrain_pl.client import AdamParams, TrainingClient

ADAM = AdamParams(lr=1e-2, weight_decay=0.01, grad_clip_norm=1.0)


def train_steps(client, batches, steps):
    for step in range(steps):
        client.forward_backward(batches[step % len(batches)])
        client.optim_step(ADAM)


@pytest.mark.parametrize("lora", [None, {"r": 4, "alpha": 8, "dropout": 0.1}])
def test_save_load_resumes_bit_identically(tmp_path, lora):
    batches = make_batches()
    torch.manual_seed(0)
    client = TrainingClient("builtin:tiny", accelerator="cpu", lora=lora)
    train_steps(client, batches, 3)
    client.forward_backward(batches[0])  # a pending micro-batch is part of the state
    client.save_state(tmp_path / "state")
    client.optim_step(ADAM)
    train_steps(client, batches, 2)
    params_a = [p.detach().clone() for p in client.params]

    resumed = TrainingClient("builtin:tiny", accelerator="cpu", lora=lora)
    resumed.load_state(tmp_path / "state")
    assert resumed.step_count == 3 and resumed.controller.micro_batches == 1
    resumed.optim_step(ADAM)
    train_steps(resumed, batches, 2)
    params_b = [p.detach().clone() for p in resumed.params]
    assert resumed.step_count == client.step_count == 6
    for a, b in zip(params_a, params_b, strict=True):
        assert torch.equal(a, b)


def test_load_state_rejects_another_model(tmp_path):
    from autotrain_pl.errors import AutotrainError

    client = TrainingClient("builtin:tiny", accelerator="cpu", lora={"r": 4})
    client.save_state(tmp_path)
    with pytest.raises(AutotrainError, match="same model reference and LoRA"):
        TrainingClient("builtin:tiny", accelerator="cpu").load_state(tmp_path)


def test_async_calls_run_in_order_and_equal_sync():
    batches = make_batches()
    sync = TrainingClient("builtin:tiny", accelerator="cpu")
    expected = [sync.forward_backward(batches[0]), sync.forward_backward(batches[1]),
                sync.optim_step(ADAM), sync.forward_backward(batches[2]), sync.optim_step(ADAM)]

    with TrainingClient("builtin:tiny", accelerator="cpu") as client:
        done: list[int] = []
        lock = threading.Lock()
        futures = [
            client.forward_backward_async(batches[0]),
            client.forward_backward_async(batches[1]),  # submitted before the first is awaited
            client.optim_step_async(ADAM),
            client.forward_backward_async(batches[2]),
            client.optim_step_async(ADAM),
        ]
        for index, future in enumerate(futures):
            future.add_done_callback(lambda _, i=index: (lock.acquire(), done.append(i),
                                                         lock.release()))
        results = [f.result(timeout=60) for f in futures]
        forward = client.forward(batches[0])  # a sync call queues behind the async ones
        assert done == sorted(done) == list(range(5))
        assert client.step_count == 2
    for got, want in zip(results, expected, strict=True):
        if hasattr(want, "logprobs"):
            assert got.loss == want.loss
            assert torch.equal(got.logprobs, want.logprobs)
        else:
            assert got == want
    assert forward.loss == sync.forward(batches[0]).loss
    for a, b in zip(client.params, sync.params, strict=True):
        assert torch.equal(a, b)
