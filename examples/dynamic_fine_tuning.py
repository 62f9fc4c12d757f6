"""A research objective in one hook: Dynamic Fine-Tuning (DFT) as a subclass of ``SFTModule``.

DFT (Wu et al., 2025, "On the Generalization of SFT: A Reinforcement Learning Perspective with
Reward Rectification") scales each target token's negative log-likelihood by the model's own,
detached probability of that token: ``-sg(p) * log p`` instead of ``-log p``. The subclass
overrides ``compute_loss`` and nothing else: batching, the exact per-step normalization, LoRA,
logging, checkpoints and export come from the framework.

    python examples/dynamic_fine_tuning.py --steps 60     # from Python, builtin:tiny, ~30 s
    PYTHONPATH=examples aitrain fit --config configs/sft.yaml \\
        --model dynamic_fine_tuning.DynamicFineTuning \\
        --model.init_args.model_name_or_path builtin:tiny     # the same class from the CLI
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import lightning as L  # noqa: E402

from autotrain_pl.data import ChatDataModule  # noqa: E402
from autotrain_pl.objectives import LossOutput, SFTModule  # noqa: E402
from autotrain_pl.training import count_real_tokens  # noqa: E402


class DynamicFineTuning(SFTModule):
    """SFT whose token losses are weighted by the model's detached token probability."""

    def compute_loss(self, batch) -> LossOutput:
        logprobs, selection = self.forward_logprobs(self.model, batch)
        weights = selection.weights
        dft = -(logprobs.detach().exp() * logprobs * weights).sum()
        nll = -(logprobs.detach() * weights).sum()  # logged as loss_ce, so ppl stays meaningful
        return LossOutput.from_sum(dft, weights.sum(), {"loss_ce": nll},
                                   tokens=count_real_tokens(batch))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:tiny")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--root", default=None, help="run directory (default: a temp dir)")
    args = parser.parse_args(argv)
    L.seed_everything(0, verbose=False)
    data = ChatDataModule("synthetic:arithmetic?n=2000&n_valid=64&seed=0",
                          valid_path="synthetic:arithmetic?n=2000&n_valid=64&seed=0&split=valid",
                          tokenizer=args.model, chat_format="chatml", batch_size=32)
    module = DynamicFineTuning(args.model, learning_rate=3e-3, lr_scheduler="constant",
                               export=False)
    trainer = L.Trainer(max_steps=args.steps, accelerator="auto", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, val_check_interval=args.steps,
                        default_root_dir=args.root or tempfile.mkdtemp(prefix="dft-"))
    before = trainer.validate(module, datamodule=data, verbose=False)[0]
    trainer.fit(module, datamodule=data)
    after = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    print(f"DFT: val/ppl {before['val/ppl']:.1f} -> {after['val/ppl']:.1f}, "
          f"val/loss {before['val/loss']:.3f} -> {after['val/loss']:.3f}")
    return {"ppl_before": before["val/ppl"], "ppl_after": after["val/ppl"]}


if __name__ == "__main__":
    main()
