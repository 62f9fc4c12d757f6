"""An SFT objective whose loss turns NaN at chosen optimizer steps: the injected fault."""

from dataclasses import replace

from autotrain_pl.objectives import SFTModule


class NaNLossSFT(SFTModule):
    """``nan_from_step``: every step from this one on is NaN; ``nan_steps``: these steps only."""

    def __init__(self, *args, nan_steps: list[int] | None = None,
                 nan_from_step: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.nan_steps = set(nan_steps or [])
        self.nan_from_step = nan_from_step

    def compute_loss(self, batch):
        output = super().compute_loss(batch)
        step = self.trainer.global_step
        if step in self.nan_steps or (self.nan_from_step is not None and
                                      step >= self.nan_from_step):
            return replace(output, loss_sum=output.loss_sum * float("nan"))
        return output
