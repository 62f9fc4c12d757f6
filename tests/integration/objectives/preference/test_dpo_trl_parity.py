"""DPOModule equals TRL 1.16 ``DPOTrainer`` on the same model, batch and reference.

Both sides get the same token ids: rows of ``synthetic:preference`` rendered in chatml, with each
completion cut after its last trained token (TRL trains every completion token). TRL's own
``DPOTrainer.compute_loss`` runs on a second, identical builtin model (it patches the model's
forward with its fused LM head) and a frozen copy as its reference; ours runs ``compute_loss`` on
the same rows in both of our pair layouts. Loss and every logged metric must agree to 1e-5.
"""

import os

import pytest
import torch

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
trl = pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from trl.trainer.dpo_trainer import DataCollatorForPreference  # noqa: E402

from autotrain_pl.data import ChatDataModule  # noqa: E402
from autotrain_pl.data.pair_batches import PairCollator  # noqa: E402
from autotrain_pl.models import load_model  # noqa: E402
from autotrain_pl.objectives import DPOModule  # noqa: E402

METRICS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
           "logps/chosen", "logps/rejected")


def _trained_part(ids: list[int], weights: list[float]) -> tuple[list[int], list[float]]:
    end = max(i for i, w in enumerate(weights) if w) + 1
    return list(ids[:end]), [1.0] * end


@pytest.fixture(scope="module")
def rows():
    data = ChatDataModule("synthetic:preference?n=6&seed=3", tokenizer="builtin:tiny",
                          chat_format="chatml", batch_size=6)
    data.setup("fit")
    out = []
    for row in data.train_dataset:
        chosen, chosen_w = _trained_part(row["chosen_ids"], row["chosen_weights"])
        rejected, rejected_w = _trained_part(row["rejected_ids"], row["rejected_weights"])
        out.append({"prompt_ids": row["prompt_ids"], "chosen_ids": chosen,
                    "chosen_weights": chosen_w, "rejected_ids": rejected,
                    "rejected_weights": rejected_w, "margin": None})
    return out, data.tokenizer


def _perturbed_policy(module_model) -> None:
    """Move the policy off the reference, so rewards are not all zero."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in module_model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)


def _trl_values(rows, tokenizer, tmp_path, loss_type, loss_weights, **config):
    from trl import DPOConfig, DPOTrainer

    policy = load_model("builtin:tiny")
    _perturbed_policy(policy)
    reference = load_model("builtin:tiny")
    args = DPOConfig(output_dir=str(tmp_path / "trl"), report_to="none", use_cpu=True,
                     bf16=False, gradient_checkpointing=False, max_length=None,
                     loss_type=loss_type, loss_weights=loss_weights, **config)
    placeholder = Dataset.from_list([{"prompt": "a", "chosen": "b", "rejected": "c"}])
    trainer = DPOTrainer(model=policy, ref_model=reference, args=args,
                         train_dataset=placeholder, processing_class=tokenizer)
    batch = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id)(
        [{k: r[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")} for r in rows])
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch)
    metrics = {k: v[0] for k, v in trainer._metrics["train"].items()}
    return float(loss), metrics


def _ours(rows, layout, loss_type, loss_weights, **config):
    module = DPOModule("builtin:tiny", loss_type=loss_type, loss_weights=loss_weights,
                       pair_layout=layout, export=False, **config)
    _perturbed_policy(module.model)
    batch = PairCollator(0, layout)(rows)
    output = module.compute_loss(batch)
    pairs = float(output.units)
    return float(output.loss_sum) / pairs, {k: float(v) / pairs
                                             for k, v in output.metric_sums.items()}


CASES = [
    ("sigmoid", None, {}),
    ("ipo", None, {}),
    ("sigmoid_norm", None, {}),
    (["sigmoid", "bco_pair", "sft"], [0.8, 0.2, 1.0], {}),
    ("hinge", None, {"f_divergence_type": "js_divergence"}),
    ("robust", None, {"label_smoothing": 0.1}),
]


@pytest.mark.parametrize(("loss_type", "loss_weights", "config"), CASES)
def test_dpo_module_matches_trl_dpo_trainer(rows, tmp_path, loss_type, loss_weights, config):
    examples, tokenizer = rows
    trl_loss, trl_metrics = _trl_values(examples, tokenizer, tmp_path, loss_type, loss_weights,
                                        beta=0.3, **config)
    for layout in ("packed", "concatenated"):
        loss, metrics = _ours(examples, layout, loss_type, loss_weights, beta=0.3, **config)
        assert loss == pytest.approx(trl_loss, rel=1e-5, abs=1e-6), layout
        for name in METRICS:
            assert metrics[name] == pytest.approx(trl_metrics[name], rel=1e-5, abs=1e-6), \
                (layout, name)
