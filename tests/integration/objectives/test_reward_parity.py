"""Parity with TRL 1.16's ``RewardTrainer`` on the same weights and the same token ids.

TRL's own code runs: a real ``RewardTrainer`` is built on a copy of our module's sequence
classifier (the same ``score`` head), its ``DataCollatorForPreference`` pads our ``prompt +
chosen`` / ``prompt + rejected`` ids, and ``RewardTrainer.compute_loss`` computes the loss and
records its metrics (``accuracy``, ``margin``, ``mean_reward``). Our ``RewardModule`` computes
the same pairs as ``ChatDataModule`` encodes them for it, packed (prompt once) or concatenated.
"""

import copy
import os

import pytest
import torch

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
datasets = pytest.importorskip("datasets")
trl = pytest.importorskip("trl")

from autotrain_pl.data import ChatDataModule  # noqa: E402
from autotrain_pl.data.pair_batches import PairCollator  # noqa: E402
from autotrain_pl.objectives import RewardModule  # noqa: E402

PAIRS = 8
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def prepared():
    torch.manual_seed(0)
    data = ChatDataModule(f"synthetic:preference?n={PAIRS}&seed=3", tokenizer="builtin:tiny",
                          chat_format="chatml", batch_size=PAIRS, seed=0)
    module = RewardModule("builtin:tiny")
    data.use_encoding(module.example_encoding())
    data.setup("fit")
    module.attach_tokenizer(data.tokenizer, data.renderer)
    features = list(data.train_dataset)
    margin = torch.linspace(-0.5, 1.0, PAIRS)
    return data, module, features, margin


def trl_loss_and_metrics(module, data, features, margin, center, tmp_path):
    """Loss and metrics of ``RewardTrainer.compute_loss`` on the pairs' own token ids."""
    examples = []
    for row, feature in enumerate(features):
        example = {f"{side}_ids": feature["prompt_ids"] + feature[f"{side}_ids"]
                   for side in ("chosen", "rejected")}
        if margin is not None:
            example["margin"] = float(margin[row])
        examples.append(example)
    config = trl.RewardConfig(
        output_dir=str(tmp_path), report_to="none", bf16=False, use_cpu=True,
        activation_checkpointing=False, center_rewards_coefficient=center, seed=0,
    )
    trainer = trl.RewardTrainer(model=copy.deepcopy(module.model), args=config,
                                train_dataset=datasets.Dataset.from_list(examples),
                                processing_class=data.tokenizer)
    inputs = trainer.data_collator(examples)
    trainer.model.train()
    loss, outputs = trainer.compute_loss(trainer.model, inputs, return_outputs=True)
    metrics = {name: values[-1] for name, values in trainer._metrics["train"].items()}
    return float(loss), metrics, outputs.logits[:, 0].detach()


@pytest.mark.parametrize("pair_layout", ["packed", "concatenated"])
@pytest.mark.parametrize(("with_margin", "center"), [(False, None), (True, None), (True, 0.05)],
                         ids=["plain", "margin", "margin+center"])
def test_loss_and_metrics_match_trl(prepared, pair_layout, with_margin, center, tmp_path):
    data, module, features, margin = prepared
    margin = margin if with_margin else None
    trl_loss, trl_metrics, trl_rewards = trl_loss_and_metrics(module, data, features, margin,
                                                              center, tmp_path)

    module.hparams.center_rewards_coefficient = center
    ours_batch = PairCollator(data.pad_token_id, pair_layout)(features)
    if margin is not None:
        ours_batch["margin"] = margin
    with torch.no_grad():
        chosen, rejected = module.forward_rewards(module.model, ours_batch)
        output = module.compute_loss(ours_batch)
    pairs = float(output.units)
    means = {name: float(value) / pairs for name, value in output.metric_sums.items()}

    torch.testing.assert_close(torch.cat([chosen, rejected]), trl_rewards, rtol=0, atol=1e-5)
    assert pairs == PAIRS
    assert float(output.loss_sum) / pairs == pytest.approx(trl_loss, abs=1e-5)
    assert means["accuracy"] == pytest.approx(trl_metrics["accuracy"], abs=1e-6)
    assert means["rewards/margins"] == pytest.approx(trl_metrics["margin"], abs=1e-5)
    mean_reward = (means["rewards/chosen"] + means["rewards/rejected"]) / 2
    assert mean_reward == pytest.approx(trl_metrics["mean_reward"], abs=1e-5)
    assert means["rewards/chosen"] == pytest.approx(float(trl_rewards[:PAIRS].mean()), abs=1e-5)
    assert means["rewards/rejected"] == pytest.approx(float(trl_rewards[PAIRS:].mean()), abs=1e-5)
