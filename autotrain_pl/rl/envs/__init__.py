"""Built-in RL environments, selected by ``rl_env_type`` (or an import path to a builder).

Each entry is a factory ``(example, reward, **options) -> EnvGroupBuilder`` for one data example
(``objectives.rl.data.RLEncoding``: prompt ids, reference, metadata).
"""

from autotrain_pl.registry import Registry

ENVIRONMENTS = Registry(
    kind="RL environment", field="model.rl_env_type",
    builtin_modules=("autotrain_pl.rl.envs.answer", "autotrain_pl.rl.envs.guess_number"),
    example="my_pkg.envs.make_group_builder", accepts=callable,
    expects="a callable that makes an EnvGroupBuilder",
)

__all__ = ["ENVIRONMENTS"]
