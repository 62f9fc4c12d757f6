"""Built-in RL environments, selected by ``rl_env_type`` (or an import path to a builder).

Each entry is a factory ``(example, reward, *, max_new_tokens, **options) -> EnvGroupBuilder``
for one data example (``objectives.rl.data.collate_problems``: prompt ids, prompt messages,
reference, metadata); its keyword-only parameters are the options ``rl_env_options`` may set,
and the objective refuses any other.
"""

from autotrain_pl.registry import Registry

ENVIRONMENTS = Registry(
    kind="RL environment", field="model.rl_env_type",
    builtin_modules=("autotrain_pl.rl.envs.answer", "autotrain_pl.rl.envs.guess_number",
                     "autotrain_pl.rl.envs.tool_use", "autotrain_pl.rl.envs.reward_model"),
    example="my_pkg.envs.make_group_builder", accepts=callable,
    expects="a callable that makes an EnvGroupBuilder",
)

#: Factory parameters the objective fills in itself; ``rl_env_options`` may not set them.
PROVIDED_OPTIONS = ("max_new_tokens", "reward_model", "reward_model_weight")

__all__ = ["ENVIRONMENTS", "PROVIDED_OPTIONS"]
