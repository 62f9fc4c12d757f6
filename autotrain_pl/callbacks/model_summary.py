"""``AutotrainModelSummary``: Lightning's ``RichModelSummary`` without the FLOPs column and the
``Total FLOPs: 0`` line when no FLOPs were measured (Lightning measures them only for a module
with an ``example_input_array``, which objectives do not set)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichModelSummary

__all__ = ["AutotrainModelSummary"]


class AutotrainModelSummary(RichModelSummary):
    """``RichModelSummary`` without the FLOPs column and total when no FLOPs were measured."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int,
                  trainable_parameters: int, model_size: float,
                  total_training_modes: dict[str, int], total_flops: int,
                  **summarize_kwargs: Any) -> None:
        if total_flops:
            RichModelSummary.summarize(summary_data, total_parameters, trainable_parameters,
                                       model_size, total_training_modes, total_flops,
                                       **summarize_kwargs)
            return
        from lightning.pytorch.utilities.model_summary import get_human_readable_count
        from lightning.pytorch.utilities.model_summary.model_summary import (
            get_formatted_model_size,
        )
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            if name == " ":
                table.add_column(name, style="dim")
            elif name == "Name":
                table.add_column(name, justify="left", no_wrap=True)
            elif name in ("Type", "Mode"):
                table.add_column(name)
            else:
                table.add_column(name, justify="right")
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        grid = Table.grid(expand=True)
        grid.add_column()
        frozen = total_parameters - trainable_parameters
        for label, value in (
            ("Trainable params", get_human_readable_count(int(trainable_parameters))),
            ("Non-trainable params", get_human_readable_count(int(frozen))),
            ("Total params", get_human_readable_count(int(total_parameters))),
            ("Total estimated model params size (MB)", get_formatted_model_size(model_size)),
            ("Modules in train mode", total_training_modes["train"]),
            ("Modules in eval mode", total_training_modes["eval"]),
        ):
            grid.add_row(f"[bold]{label}[/]: {value}")
        console = get_console()
        console.print(table)
        console.print(grid)
