"""Collation: shapes, padding side and value, weights aligned with ids, equal preference halves."""

from __future__ import annotations

import torch

from autotrain_pl.data import GenerationCollator, PreferenceCollator, SFTCollator

PAD = 0


def test_sft_right_pads_and_aligns_weights():
    features = [
        {"input_ids": [5, 6, 7], "loss_weights": [0.0, 1.0, 1.0]},
        {"input_ids": [8, 9], "loss_weights": [0.0, 0.5]},
    ]
    batch = SFTCollator(PAD, return_position_ids=True)(features)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 9, PAD]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["loss_weights"].tolist() == [[0.0, 1.0, 1.0], [0.0, 0.5, 0.0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2], [0, 1, 0]]
    assert batch["input_ids"].dtype == torch.long and batch["attention_mask"].dtype == torch.long
    assert batch["loss_weights"].dtype == torch.float


def test_pad_to_multiple_of():
    batch = SFTCollator(PAD, pad_to_multiple_of=8)(
        [{"input_ids": [1] * 9, "loss_weights": [1.0] * 9}]
    )
    assert batch["input_ids"].shape == (1, 16)
    assert batch["loss_weights"][0, 9:].abs().sum() == 0


def test_preference_halves_share_one_length_and_concatenate():
    features = [
        {
            "prompt_ids": [1, 2],
            "chosen_ids": [3],
            "chosen_weights": [1.0],
            "rejected_ids": [4, 5, 6, 7],
            "rejected_weights": [1.0] * 4,
        },
        {
            "prompt_ids": [1],
            "chosen_ids": [3, 3],
            "chosen_weights": [1.0, 1.0],
            "rejected_ids": [4],
            "rejected_weights": [1.0],
        },
    ]
    batch = PreferenceCollator(PAD)(features)
    assert batch["chosen_input_ids"].shape == batch["rejected_input_ids"].shape == (2, 6)
    assert batch["chosen_input_ids"][0].tolist() == [1, 2, 3, PAD, PAD, PAD]
    assert batch["chosen_loss_weights"][0].tolist() == [0, 0, 1, 0, 0, 0]
    assert batch["rejected_attention_mask"][0].tolist() == [1] * 6
    joined = torch.cat([batch["chosen_input_ids"], batch["rejected_input_ids"]])
    assert joined.shape == (4, 6)


def test_generation_left_pads_and_keeps_references():
    features = [
        {"input_ids": [5, 6, 7], "reference": "a", "metadata": '{"id": 1}'},
        {"input_ids": [8], "reference": None, "metadata": "{}"},
    ]
    batch = GenerationCollator(PAD)(features)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [PAD, PAD, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert batch["references"] == ["a", None]
    assert batch["metadata"] == [{"id": 1}, {}]
