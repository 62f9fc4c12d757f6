"""CPO/SimPO, ORPO and KTO against TRL 1.16 on identical inputs, by calling TRL's own code.

- CPO and ORPO: ``get_batch_loss_metrics`` (which runs ``concatenated_inputs``,
  ``concatenated_forward``, ``get_batch_logps`` and ``cpo_loss``/``odds_ratio_loss``) on a stub
  ``self`` whose class borrows exactly those methods from the trainer, and a stub model whose
  logits are a fixed function of token and position. Our side scores the same logits itself.
- KTO: ``KTOTrainer._compute_loss`` (and its ``_compute_kl_logps``) on a stub trainer and a stub
  model returning per-token log-probs, with ``precompute_ref_logps=True``.

The stubs depend on TRL internals; if a TRL upgrade breaks them, read the new source and adapt.
"""

import inspect
import os
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
cpo_trainer = pytest.importorskip("trl.experimental.cpo.cpo_trainer")
orpo_trainer = pytest.importorskip("trl.experimental.orpo.orpo_trainer")
kto_trainer = pytest.importorskip("trl.trainer.kto_trainer")

from autotrain_pl.losses import cpo_loss, kto_loss, orpo_loss  # noqa: E402

VOCAB = 13


class _Accelerator:
    device = torch.device("cpu")

    @staticmethod
    def gather_for_metrics(tensor):
        return tensor


def _stub(trainer_cls, methods, **attributes):
    """An object whose class borrows ``methods`` from ``trainer_cls`` (static ones stay static)."""
    cls = type("Stub", (), {name: inspect.getattr_static(trainer_cls, name) for name in methods})
    stub = cls()
    stub.__dict__.update(accelerator=_Accelerator(), is_encoder_decoder=False, **attributes)
    return stub


_PAIR_METHODS = ("concatenated_inputs", "concatenated_forward", "get_batch_logps")


class _Model:
    """Logits that depend on the token and its position only, so any padding scores the same."""

    def __init__(self, gen: torch.Generator, max_len: int = 16):
        self.table = torch.randn(VOCAB, VOCAB, generator=gen, dtype=torch.float64) * 2
        self.position = torch.randn(max_len, VOCAB, generator=gen, dtype=torch.float64)

    def __call__(self, input_ids, attention_mask=None, use_cache=False):
        return SimpleNamespace(logits=self.table[input_ids] + self.position[: input_ids.shape[1]])

    def scores(self, ids: torch.Tensor, first: int, last: int) -> float:
        """Summed log-probs of ``ids[first:last]`` given their prefixes."""
        logps = torch.log_softmax(self(ids[None]).logits[0], -1)
        return sum(logps[t - 1, ids[t]].item() for t in range(first, last))


def _pair_batch(gen: torch.Generator, model: _Model, pairs: int = 4):
    """A TRL CPO/ORPO batch (right-padded, prompt masked in labels) and our per-pair inputs."""
    batch, ours = {}, defaultdict(list)
    prompt_lens = torch.randint(2, 5, (pairs,), generator=gen).tolist()
    for side in ("chosen", "rejected"):
        rows = []
        for prompt_len in prompt_lens:
            completion_len = int(torch.randint(1, 6, (1,), generator=gen))
            rows.append(torch.randint(1, VOCAB, (prompt_len + completion_len,), generator=gen))
        width = max(len(row) for row in rows)
        ids = torch.zeros(pairs, width, dtype=torch.long)
        mask = torch.zeros(pairs, width, dtype=torch.long)
        labels = torch.full((pairs, width), -100)
        for b, (row, prompt_len) in enumerate(zip(rows, prompt_lens, strict=True)):
            ids[b, : len(row)], mask[b, : len(row)] = row, 1
            labels[b, prompt_len : len(row)] = row[prompt_len:]
            ours[f"{side}_logps"].append(model.scores(row, prompt_len, len(row)))
            ours[f"{side}_lengths"].append(len(row) - prompt_len)
            ours["prompt_logps"].append(model.scores(row, 1, prompt_len))
            ours["prompt_lengths"].append(prompt_len - 1)
        batch.update(
            {f"{side}_input_ids": ids, f"{side}_attention_mask": mask, f"{side}_labels": labels}
        )
    ours = {key: torch.tensor(values, dtype=torch.float64) for key, values in ours.items()}
    ours["prompt_logps"], ours["prompt_lengths"] = (
        ours["prompt_logps"][:pairs],
        ours["prompt_lengths"][:pairs],
    )
    return batch, ours


_REWARD_METRICS = (
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
)


@pytest.mark.parametrize(
    "settings",
    [
        {"loss_type": "simpo", "beta": 2.0, "simpo_gamma": 0.5, "cpo_alpha": 0.0},
        {"loss_type": "simpo", "beta": 2.5, "simpo_gamma": 1.4, "label_smoothing": 0.1},
        {"loss_type": "sigmoid", "beta": 0.1, "cpo_alpha": 1.0},
        {"loss_type": "sigmoid", "beta": 0.3, "cpo_alpha": 0.5, "label_smoothing": 0.2},
        {"loss_type": "hinge", "beta": 0.2, "cpo_alpha": 0.2},
        {"loss_type": "ipo", "beta": 0.4, "cpo_alpha": 0.0},
    ],
    ids=lambda settings: "-".join(f"{v}" for v in settings.values()),
)
def test_cpo_matches_trl(settings):
    gen = torch.Generator().manual_seed(11)
    model = _Model(gen)
    batch, ours = _pair_batch(gen, model)
    settings = {"label_smoothing": 0.0, "simpo_gamma": 0.5, "cpo_alpha": 1.0, **settings}
    stub = _stub(
        cpo_trainer.CPOTrainer,
        (*_PAIR_METHODS, "cpo_loss", "get_batch_loss_metrics"),
        pad_token_id=0,
        aux_loss_enabled=False,
        alpha=0.0,
        **settings,
    )
    trl_loss, trl_metrics = stub.get_batch_loss_metrics(model, batch)
    loss, metrics = cpo_loss(
        ours["chosen_logps"],
        ours["rejected_logps"],
        ours["chosen_lengths"],
        ours["rejected_lengths"],
        **settings,
    )
    assert loss.item() == pytest.approx(trl_loss.item(), rel=1e-10)
    keys = [*_REWARD_METRICS, "nll_loss"] if settings["cpo_alpha"] > 0 else _REWARD_METRICS
    assert sorted(metrics) == sorted(keys)
    for key in keys:
        assert metrics[key].mean().item() == pytest.approx(trl_metrics[key], rel=1e-10)


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_orpo_matches_trl(beta):
    gen = torch.Generator().manual_seed(12)
    model = _Model(gen)
    batch, ours = _pair_batch(gen, model)
    stub = _stub(
        orpo_trainer.ORPOTrainer,
        (*_PAIR_METHODS, "odds_ratio_loss", "get_batch_loss_metrics"),
        padding_value=0,
        aux_loss_enabled=False,
        beta=beta,
    )
    trl_loss, trl_metrics = stub.get_batch_loss_metrics(model, batch)
    # TRL's NLL covers the chosen row's prompt too; its odds ratio is computed in float32.
    loss, metrics = orpo_loss(
        ours["chosen_logps"],
        ours["rejected_logps"],
        ours["chosen_lengths"],
        ours["rejected_lengths"],
        beta=beta,
        prompt_logps=ours["prompt_logps"],
        prompt_lengths=ours["prompt_lengths"],
    )
    assert loss.item() == pytest.approx(trl_loss.item(), rel=1e-6)
    keys = (*_REWARD_METRICS, "nll_loss", "log_odds_ratio", "log_odds_chosen")
    assert sorted(metrics) == sorted(keys)
    for key in keys:
        assert metrics[key].mean().item() == pytest.approx(trl_metrics[key], rel=1e-6)


def _kto_batch(gen: torch.Generator, labels: list[bool], seq_len: int = 8, kl_shift: float = 0.0):
    """A TRL KTO batch and the per-token log-probs of its completions and KL completions."""
    size = len(labels)

    def completion(width: int):
        mask = torch.zeros(size, width, dtype=torch.long)
        for row, start in enumerate(torch.randint(1, width - 1, (size,), generator=gen).tolist()):
            mask[row, start:] = 1
        logps = -torch.rand(size, width - 1, generator=gen, dtype=torch.float64) * 2
        return mask, logps * mask[:, 1:]

    mask, logps = completion(seq_len)
    kl_mask, kl_logps = completion(seq_len + 2)  # another width: the stub model tells them apart
    inputs = {
        "input_ids": torch.randint(0, 50, (size, seq_len), generator=gen),
        "attention_mask": torch.ones(size, seq_len, dtype=torch.long),
        "completion_mask": mask,
        "KL_input_ids": torch.randint(0, 50, (size, seq_len + 2), generator=gen),
        "KL_attention_mask": torch.ones(size, seq_len + 2, dtype=torch.long),
        "KL_completion_mask": kl_mask,
        "label": torch.tensor(labels),
        "ref_logps": logps.sum(1) + torch.randn(size, generator=gen, dtype=torch.float64),
        "ref_KL_logps": kl_logps.sum(1)
        + torch.randn(size, generator=gen, dtype=torch.float64)
        + kl_shift,
    }
    return inputs, logps, kl_logps


@pytest.mark.parametrize(
    ("loss_type", "labels", "kl_shift", "weights"),
    [
        ("kto", [True, False, True, True, False], -0.5, (1.0, 1.0)),
        ("kto", [True, False, False, True, False], 2.0, (1.33, 0.8)),  # KL < 0, clamped to 0
        ("kto", [True, True, True], -0.5, (1.0, 1.0)),  # no undesirable example
        ("apo_zero_unpaired", [False, True, True, False], 0.0, (0.7, 1.2)),
    ],
)
def test_kto_matches_trl(loss_type, labels, kl_shift, weights):
    gen = torch.Generator().manual_seed(13)
    inputs, logps, kl_logps = _kto_batch(gen, labels, kl_shift=kl_shift)
    calculate_kl = loss_type == "kto"

    def model(**kwargs):
        is_kl = kwargs["input_ids"].shape[1] == kl_logps.shape[1] + 1
        per_token = kl_logps if is_kl else logps
        zeros = torch.zeros_like(per_token)
        return SimpleNamespace(log_probs=per_token, entropy=zeros, mean_logits=zeros)

    stub = _stub(
        kto_trainer.KTOTrainer,
        ("_compute_kl_logps", "_compute_loss"),
        model=SimpleNamespace(training=True),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
        aux_loss_enabled=False,
        precompute_ref_logps=True,
        calculate_KL=calculate_kl,
        loss_type=loss_type,
        beta=0.2,
        desirable_weight=weights[0],
        undesirable_weight=weights[1],
    )
    trl_loss = stub._compute_loss(model, dict(inputs), False)
    trl_metrics = {key: values[0] for key, values in stub._metrics["train"].items()}

    loss, metrics = kto_loss(
        logps.sum(1),
        inputs["ref_logps"],
        inputs["label"],
        kl_logps.sum(1) if calculate_kl else None,
        inputs["ref_KL_logps"] if calculate_kl else None,
        beta=0.2,
        desirable_weight=weights[0],
        undesirable_weight=weights[1],
        loss_type=loss_type,
    )
    assert loss.item() == pytest.approx(trl_loss.item(), rel=1e-10)
    assert metrics["kl"].mean().item() == pytest.approx(trl_metrics["kl"], abs=1e-12)
    recovered = {}
    for side in ("chosen", "rejected"):
        count = metrics[f"count/{side}"].sum().item()
        if count > 0:
            for name in ("rewards", "logps"):
                recovered[f"{name}/{side}"] = metrics[f"{name}/{side}_sum"].sum().item() / count
    if "rewards/chosen" in recovered and "rewards/rejected" in recovered:
        recovered["rewards/margins"] = recovered["rewards/chosen"] - recovered["rewards/rejected"]
    expected = {k: v for k, v in trl_metrics.items() if k.startswith(("rewards/", "logps/"))}
    assert recovered.keys() == expected.keys()
    for key, value in expected.items():
        assert recovered[key] == pytest.approx(value, rel=1e-10)
