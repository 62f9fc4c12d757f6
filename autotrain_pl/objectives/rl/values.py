"""PPO's value function: a scalar head on the policy's trunk, or a separate critic model.

Both read a value at the same target positions as the policy's log-probabilities (the state
before each sampled token), so values, log-probs and advantages line up token by token.

- ``SharedValueHead`` (``value_model: shared``): a ``Linear(hidden, 1)`` on the policy's last
  hidden state. It costs no second forward pass, but its loss trains the trunk too. It is a
  submodule of the objective, not of the policy, so the LM export never holds it while the
  Lightning checkpoint (``value_function.score.*`` and its optimizer state) does.
- ``SeparateCritic`` (``value_model: separate``): its own ``load_model(ref, head="reward")``
  (a one-label sequence classifier), by default from the policy's starting point; twice the
  memory and compute, but the policy's trunk sees no value gradient.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models import fit_embeddings, load_model, prepare_for_training
from autotrain_pl.models.heads import unwrapped
from autotrain_pl.models.reward import rewards_at
from autotrain_pl.training import TokenSelection, trained_inputs
from autotrain_pl.training.final_layer import trimmed_last_layer

VALUE_MODELS = ("shared", "separate")


class SharedValueHead(nn.Module):
    """A scalar head on the policy's last hidden state.

    Its weights start at zero: the first values are 0 (no prior), and the value loss sends no
    gradient into the trunk until the head has learned something, so early updates leave the
    policy's features as they were.
    """

    reads_policy_states = True

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.score = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def forward(self, batch: Mapping[str, Tensor], selection: TokenSelection,
                states: Tensor | None) -> Tensor:
        """``[N]`` float32 values from the policy's hidden ``states`` at the selected
        positions."""
        return self.score(states.to(self.score.weight.dtype)).squeeze(-1).float()


class SeparateCritic(nn.Module):
    """A critic model of its own: a one-label sequence classifier read at every position."""

    reads_policy_states = False

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Mapping[str, Tensor], selection: TokenSelection,
                states: Tensor | None) -> Tensor:
        """``[N]`` float32 values at the selected positions from the critic's own forward."""
        inputs = trained_inputs(batch, selection)
        return rewards_at(self.model, inputs, selection.rows, selection.positions,
                          trimmed_last_layer).float()

    def attach_tokenizer(self, tokenizer) -> None:
        """Grow the critic's embeddings as the policy's, for tokens the chat format added."""
        fit_embeddings(self.model, tokenizer)


def build_value_model(kind: str, policy: nn.Module, *, ref: str, options: Mapping[str, Any]
                      ) -> SharedValueHead | SeparateCritic:
    """The value function of ``kind``; ``options`` are the policy's loading and LoRA options
    (``dtype``, ``lora``, ``quantization``...) for a separate critic loaded from ``ref``."""
    if kind == "shared":
        config = unwrapped(policy).config
        config = config.get_text_config() if hasattr(config, "get_text_config") else config
        return SharedValueHead(int(config.hidden_size))
    critic = load_model(ref, head="reward", dtype=options["dtype"],
                        attn_implementation=options["attn_implementation"],
                        trust_remote_code=options["trust_remote_code"],
                        quantization=options["quantization"])
    critic = prepare_for_training(critic, lora=options["lora"],
                                  gradient_checkpointing=options["gradient_checkpointing"])
    critic.train()
    return SeparateCritic(critic)


def check_value_model(kind: str, path: str | None) -> None:
    """One-line errors for the value-model options, before any model loads."""
    if kind not in VALUE_MODELS:
        raise AutotrainError(f"model.value_model={kind!r} is not known; use shared (a head on "
                             "the policy's trunk) or separate (a critic model of its own)")
    if path is not None and kind != "separate":
        raise AutotrainError("model.value_model_path needs model.value_model: separate; the "
                             "shared head lives on the policy's own trunk")

