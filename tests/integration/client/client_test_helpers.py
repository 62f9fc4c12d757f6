"""Batch helpers shared by the client tests (copied from the objectives tests, not imported)."""

from __future__ import annotations

import torch


def make_batches(seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Three micro-batches of uneven lengths and uneven trained-token counts."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for rows, length in [(2, 7), (3, 15), (1, 4)]:
        ids = torch.randint(5, 4000, (rows, length), generator=generator)
        weights = (torch.rand(rows, length, generator=generator) > 0.4).float()
        weights[0, -1] = 0.5  # a fractional weight
        mask = torch.ones(rows, length, dtype=torch.long)
        mask[-1, -2:] = 0  # right padding in the last row
        weights = weights * mask
        batches.append({"input_ids": ids, "attention_mask": mask, "loss_weights": weights})
    return batches


def pad_and_concat(batches: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    width = max(b["input_ids"].shape[1] for b in batches)
    out = {}
    for key in ("input_ids", "attention_mask", "loss_weights"):
        out[key] = torch.cat([
            torch.nn.functional.pad(b[key], (0, width - b[key].shape[1])) for b in batches
        ])
    return out


def params_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def assert_params_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                        rtol: float = 1e-4, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=rtol, atol=atol, msg=name)
