"""Environments train end to end: GRPO raises a reward model's score and shortens games."""

import csv
from pathlib import Path

import pytest
import torch
from fit_testing import make_trainer
from lightning.pytorch.loggers import CSVLogger

from autotrain_pl.data import ChatDataModule
from autotrain_pl.models import load_model, load_tokenizer
from autotrain_pl.objectives import GRPOModule, SFTModule

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def logged(root: Path, name: str) -> list[float]:
    rows = list(csv.DictReader(open(next(root.glob("**/metrics.csv")))))
    return [float(r[name]) for r in rows if r.get(name)]


def test_grpo_raises_the_score_of_a_reward_model(tmp_path):
    torch.manual_seed(0)
    reward_model = tmp_path / "reward_model"
    load_model("builtin:tiny", head="reward").save_pretrained(reward_model)
    load_tokenizer("builtin:tiny").save_pretrained(reward_model)
    data = ChatDataModule("synthetic:rl_prompts?n=256&seed=0", tokenizer="builtin:tiny",
                          chat_format="chatml", batch_size=8, seed=0)
    module = GRPOModule("builtin:tiny", num_generations=8, max_new_tokens=6,
                        rl_env_type="reward_model", rl_reward_model_path=str(reward_model),
                        learning_rate=3e-3, lr_scheduler="constant")
    root = tmp_path / "run"
    trainer = make_trainer(root, max_steps=30, logger=CSVLogger(root), log_every_n_steps=1)
    trainer.fit(module, datamodule=data)
    rewards = logged(root, "train/reward")
    assert len(rewards) == 30
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last > first + 0.05, (first, last)



def test_grpo_shortens_guess_the_number_games(tmp_path):
    """A model stopped after 5 SFT steps often replies with something that is not a number, and
    each such reply costs a turn; the game's reward (fewer turns earn more) must cut the mean
    number of turns, here from about 3.9 of at most 4."""
    torch.manual_seed(0)
    games = ChatDataModule("synthetic:guess_number_games?n=2000&seed=0&low=1&high=4",
                           tokenizer="builtin:tiny", chat_format="chatml",
                           train_on="all_assistant_messages", batch_size=16, seed=0)
    sft = SFTModule("builtin:tiny", learning_rate=3e-3, lr_scheduler="constant",
                    export_mode="full")
    make_trainer(tmp_path / "sft", max_steps=5).fit(sft, datamodule=games)
    player = str(tmp_path / "sft" / "export")
    data = ChatDataModule("synthetic:guess_number?n=400&seed=1&low=1&high=4", tokenizer=player,
                          chat_format="chatml", batch_size=8, seed=0)
    module = GRPOModule(player, num_generations=8, max_new_tokens=4, rl_env_type="guess_number",
                        rl_env_options={"max_turns": 4}, learning_rate=2e-3,
                        lr_scheduler="constant")
    root = tmp_path / "rl"
    trainer = make_trainer(root, max_steps=40, logger=CSVLogger(root), log_every_n_steps=1)
    trainer.fit(module, datamodule=data)
    turns = logged(root, "train/turns")
    assert len(turns) == 40
    first, last = sum(turns[:5]) / 5, sum(turns[-10:]) / 10
    assert last < first - 0.25, (first, last)
