"""KTOModule equals TRL 1.16 ``KTOTrainer``, and DPOModule's SimPO/CPO equal ``CPOTrainer``.

As in ``test_dpo_trl_parity``: the same rows (``synthetic`` arithmetic in chatml, each completion
cut after its last trained token), the same weights (a perturbed builtin policy), TRL's own
trainer code on its own model copy. KTO's mismatched KL completions are the ones our encoding
picks (each example borrows the previous one's completion), handed to TRL's collator as
``KL_completion_ids``.
"""

import os

import pytest
import torch

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402

from autotrain_pl.data import ChatDataModule  # noqa: E402
from autotrain_pl.data.pair_batches import PairCollator  # noqa: E402
from autotrain_pl.models import load_model  # noqa: E402
from autotrain_pl.objectives import DPOModule, KTOModule  # noqa: E402


def _trained_part(ids, weights):
    end = max(i for i, w in enumerate(weights) if w) + 1
    return list(ids[:end]), [1.0] * end


def _perturb(model) -> None:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)


def _policy():
    model = load_model("builtin:tiny")
    _perturb(model)
    return model


def _encoded(ref: str, module) -> tuple[list[dict], object]:
    data = ChatDataModule(ref, tokenizer="builtin:tiny", chat_format="chatml", batch_size=8)
    data.use_encoding(module.example_encoding())
    data.setup("fit")
    return list(data.train_dataset), data.tokenizer


@pytest.mark.parametrize("loss_type", ["kto", "apo_zero_unpaired"])
def test_kto_module_matches_trl_kto_trainer(tmp_path, loss_type):
    from trl import KTOConfig, KTOTrainer
    from trl.trainer.kto_trainer import DataCollatorForUnpairedPreference

    config = {"beta": 0.3, "desirable_weight": 1.2, "undesirable_weight": 0.8}
    module = KTOModule("builtin:tiny", loss_type=loss_type, export=False, **config)
    _perturb(module.model)
    rows, tokenizer = _encoded("synthetic:unpaired_preference?n=6&seed=3", module)
    for row in rows:  # TRL trains every completion token: cut the untrained trailer
        row["completion_ids"], row["completion_weights"] = _trained_part(
            row["completion_ids"], row["completion_weights"])
        row["kl_ids"], row["kl_weights"] = _trained_part(row["kl_ids"], row["kl_weights"])

    batch = PairCollator(0, "packed", first="completion", second="kl")(rows)
    output = module.compute_loss(batch)
    means = {k: float(v) / float(output.units) for k, v in output.metric_sums.items()}
    ours = {"loss": float(output.loss_sum) / float(output.units),
            **module.derived_metrics(means), "kl": means["kl"]}

    args = KTOConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, bf16=False,
                     gradient_checkpointing=False, max_length=None, loss_type=loss_type,
                     per_device_train_batch_size=len(rows), **config)
    placeholder = Dataset.from_list([{"prompt": "a", "completion": "b", "label": True},
                                     {"prompt": "c", "completion": "d", "label": False}])
    trainer = KTOTrainer(model=_policy(), ref_model=load_model("builtin:tiny"), args=args,
                         train_dataset=placeholder, processing_class=tokenizer)
    examples = [{"prompt_ids": r["prompt_ids"], "completion_ids": r["completion_ids"],
                 "KL_completion_ids": r["kl_ids"], "label": r["label"]} for r in rows]
    if loss_type != "kto":
        examples = [{k: v for k, v in e.items() if k != "KL_completion_ids"} for e in examples]
    inputs = DataCollatorForUnpairedPreference(pad_token_id=tokenizer.pad_token_id)(examples)
    trainer.model.train()
    trl_loss = float(trainer.compute_loss(trainer.model, inputs))
    trl = {k: v[0] for k, v in trainer._metrics["train"].items()}

    assert ours["loss"] == pytest.approx(trl_loss, rel=1e-5, abs=1e-6)
    names = ["rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen",
             "logps/rejected"] + (["kl"] if loss_type == "kto" else [])
    for name in names:
        assert ours[name] == pytest.approx(trl[name], rel=1e-5, abs=1e-6), name


def _pairs_and_ours(module) -> tuple[list[dict], object, dict[str, float]]:
    _perturb(module.model)
    rows, tokenizer = _encoded("synthetic:preference?n=6&seed=3", module)
    for row in rows:
        for side in ("chosen", "rejected"):
            row[f"{side}_ids"], row[f"{side}_weights"] = _trained_part(
                row[f"{side}_ids"], row[f"{side}_weights"])
    output = module.compute_loss(PairCollator(0, "packed")(rows))
    pairs = float(output.units)
    ours = {"loss": float(output.loss_sum) / pairs,
            **{k: float(v) / pairs for k, v in output.metric_sums.items()}}
    return rows, tokenizer, ours


def _trl_pair_batch(rows, pad_token_id: int) -> dict[str, torch.Tensor]:
    """The chosen/rejected halves of TRL's experimental trainers, prompt labels masked."""
    batch = {}
    for side in ("chosen", "rejected"):
        width = max(len(r["prompt_ids"]) + len(r[f"{side}_ids"]) for r in rows)
        ids = torch.full((len(rows), width), pad_token_id)
        labels = torch.full((len(rows), width), -100)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            full = r["prompt_ids"] + r[f"{side}_ids"]
            ids[i, : len(full)] = torch.tensor(full)
            mask[i, : len(full)] = 1
            labels[i, len(r["prompt_ids"]) : len(full)] = torch.tensor(r[f"{side}_ids"])
        batch.update({f"{side}_input_ids": ids, f"{side}_attention_mask": mask,
                      f"{side}_labels": labels})
    return batch


REWARD_METRICS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                  "logps/chosen", "logps/rejected")


@pytest.mark.parametrize(("ours_type", "trl_type", "cpo_alpha"),
                         [("simpo", "simpo", 0.0), ("cpo", "sigmoid", 1.0)])
def test_reference_free_types_match_trl_cpo_trainer(tmp_path, ours_type, trl_type, cpo_alpha):
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    beta = 2.0 if ours_type == "simpo" else 0.1
    rows, tokenizer, ours = _pairs_and_ours(
        DPOModule("builtin:tiny", loss_type=ours_type, beta=beta, export=False))
    args = CPOConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, bf16=False,
                     gradient_checkpointing=False, loss_type=trl_type, cpo_alpha=cpo_alpha,
                     beta=beta, simpo_gamma=0.5, max_length=256)
    placeholder = Dataset.from_list([{"prompt": "a", "chosen": "b", "rejected": "c"}])
    trainer = CPOTrainer(model=_policy(), args=args, train_dataset=placeholder,
                         processing_class=tokenizer)
    trainer.model.train()
    trl_loss, trl_metrics = trainer.get_batch_loss_metrics(
        trainer.model, _trl_pair_batch(rows, tokenizer.pad_token_id), "train")

    assert ours["loss"] == pytest.approx(float(trl_loss), rel=1e-5, abs=1e-6)
    for name in REWARD_METRICS:
        assert ours[name] == pytest.approx(float(trl_metrics[name]), rel=1e-5, abs=1e-6), name


def test_orpo_matches_trl_orpo_trainer_on_the_odds_ratio_term(tmp_path):
    """TRL's ORPO trains its NLL term on the prompt tokens too (it ignores the batch's labels
    there); ours, like the paper's L_SFT, on the reply only. Everything else is equal: the
    odds-ratio term (loss minus NLL) and every metric but ``nll_loss``."""
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    rows, tokenizer, ours = _pairs_and_ours(
        DPOModule("builtin:tiny", loss_type="orpo", beta=0.2, export=False))
    args = ORPOConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, bf16=False,
                      gradient_checkpointing=False, beta=0.2, max_length=256)
    placeholder = Dataset.from_list([{"prompt": "a", "chosen": "b", "rejected": "c"}])
    trainer = ORPOTrainer(model=_policy(), args=args, train_dataset=placeholder,
                          processing_class=tokenizer)
    trainer.model.train()
    trl_loss, trl_metrics = trainer.get_batch_loss_metrics(
        trainer.model, _trl_pair_batch(rows, tokenizer.pad_token_id), "train")

    odds_ratio_term = ours["loss"] - ours["nll_loss"]
    trl_term = float(trl_loss) - float(trl_metrics["nll_loss"])
    assert odds_ratio_term == pytest.approx(trl_term, rel=1e-5, abs=1e-6)
    for name in (*REWARD_METRICS, "log_odds_ratio", "log_odds_chosen"):
        assert ours[name] == pytest.approx(float(trl_metrics[name]), rel=1e-5, abs=1e-6), name
