"""The ``aitrain`` subcommands beyond Lightning's fit/validate/test/predict, by name.

Each is a function ``(argv) -> exit code`` registered where it is written::

    @SUBCOMMANDS.register("generate")
    def generate_command(argv): ...

``cli.py`` dispatches to them; their modules are imported only when ``aitrain`` looks one up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from autotrain_pl.registry import Registry

Subcommand = Callable[[Sequence[str]], int]

SUBCOMMANDS: Registry[Subcommand] = Registry(
    kind="subcommand",
    field="subcommand",
    builtin_modules=("autotrain_pl.generation.commands", "autotrain_pl.evaluation.commands",
                     "autotrain_pl.sweep.commands", "autotrain_pl.llm.commands"),
    example="my_pkg.cli.my_command",
    accepts=callable,
    expects="a function (argv) -> exit code",
)
