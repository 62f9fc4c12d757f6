"""quiet_known_noise: each known message is silenced where it is emitted; the rest still shows."""

import logging
import warnings

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import RichModelSummary
from lightning.pytorch.utilities import data as lightning_data
from lightning.pytorch.utilities._pytree import _tree_flatten

from autotrain_pl.callbacks import AutotrainModelSummary
from autotrain_pl.quiet import KNOWN_NOISE_LOGS, MessageFilter, quiet_known_noise


@pytest.fixture
def quiet():
    """Installs the filters for one test; takes the logging filters off again afterwards (the
    warning filters go with ``warnings.catch_warnings``)."""
    loggers = {name: list(logging.getLogger(name).filters)
               for spec in KNOWN_NOISE_LOGS for name in spec.loggers}
    yield quiet_known_noise
    for name, filters in loggers.items():
        logging.getLogger(name).filters[:] = filters


def _messages(trigger, install=None) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # the test config ignores UserWarning: undo that here
        if install is not None:
            install()
        trigger()
    return [str(w.message) for w in caught]


def _tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(vocab_size=16, hidden_size=8, intermediate_size=16,
                                        num_hidden_layers=1, num_attention_heads=1,
                                        num_key_value_heads=1))


def _other_warning(module: str, category: type[Warning]):
    def emit():
        warnings.warn_explicit("`something_else` is deprecated and will go.", category,
                               "elsewhere.py", 1, module=module, registry={})
    return emit


def test_transformers_is_gradient_checkpointing(quiet):
    model = _tiny_model()

    def trigger():
        return model.is_gradient_checkpointing

    assert any("is_gradient_checkpointing" in m for m in _messages(trigger))  # it does warn
    assert _messages(trigger, quiet) == []
    other = _other_warning("transformers.modeling_utils", FutureWarning)
    assert _messages(other, quiet) == ["`something_else` is deprecated and will go."]


def test_lightning_leafspec(quiet):
    def trigger():
        _tree_flatten(1)

    assert any("LeafSpec" in m for m in _messages(trigger))
    assert _messages(trigger, quiet) == []
    other = _other_warning("lightning.pytorch.utilities._pytree", FutureWarning)
    assert len(_messages(other, quiet)) == 1


class _OneRank:
    root_device = torch.device("cpu")

    @staticmethod
    def reduce(tensor, reduce_op="sum"):
        return tensor


def test_empty_validation_list_but_not_an_empty_dataloader(quiet):
    def empty_list():
        lightning_data.has_len_all_ranks([], _OneRank())

    def empty_loader():
        lightning_data.has_len_all_ranks(torch.utils.data.DataLoader([]), _OneRank())

    assert any("across ranks is zero" in m for m in _messages(empty_list))
    assert _messages(empty_list, quiet) == []
    assert ["Total length of `DataLoader` across ranks is zero" in m
            for m in _messages(empty_loader, quiet)] == [True]


def test_ambiguous_batch_size(quiet):
    batch = {"input_ids": torch.zeros(4, 7), "lengths": torch.zeros(9)}

    def trigger():
        lightning_data.warning_cache.clear()  # Lightning says it once per process
        assert lightning_data.extract_batch_size(batch) == 4

    assert any("ambiguous collection" in m for m in _messages(trigger))
    assert _messages(trigger, quiet) == []

    def unrelated():
        lightning_data.warning_cache.clear()
        lightning_data.has_len_all_ranks(torch.utils.data.DataLoader([]), _OneRank())

    assert len(_messages(unrelated, quiet)) == 1


def test_bitsandbytes_kernels_message(quiet, caplog):
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    caplog.set_level(logging.WARNING)
    quiet()
    # Exactly as bitsandbytes/backends/cpu/ops.py logs it.
    logger.warning(
        "Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make sure you "
        "already `pip install kernels` and the kernels >= 0.11.1",
        ModuleNotFoundError("No module named 'kernels'"))
    logger.warning("a real problem with 4-bit weights")
    assert [r.getMessage() for r in caplog.records] == ["a real problem with 4-bit weights"]


def test_lightning_tips_but_not_its_other_info(quiet, caplog, tmp_path, fakes):
    caplog.set_level(logging.INFO)
    quiet()
    # logger=False and default checkpointing: Lightning prints both the litlogger and the
    # litmodels tip.
    trainer = fakes.trainer(tmp_path, [], max_steps=1, enable_checkpointing=True,
                            limit_val_batches=0)
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    messages = [r.getMessage() for r in caplog.records]
    assert not any("Tip" in m or "litlogger" in m or "litmodels" in m for m in messages)
    assert any("GPU available" in m for m in messages)
    assert any("max_steps=1" in m for m in messages)


def test_skipped_default_summary_note_only_for_ours(quiet, caplog, tmp_path):
    caplog.set_level(logging.INFO)
    quiet()
    Trainer(default_root_dir=tmp_path, logger=False, callbacks=[AutotrainModelSummary()])
    assert not any("model summary callbacks" in r.getMessage() for r in caplog.records)
    Trainer(default_root_dir=tmp_path, logger=False, callbacks=[RichModelSummary()])
    assert any("model summary callbacks" in r.getMessage() for r in caplog.records)


def test_tips_do_show_without_the_filters(quiet, caplog, tmp_path):
    for spec in KNOWN_NOISE_LOGS:  # a CLI test earlier in this process may have installed them
        for name in spec.loggers:
            logging.getLogger(name).filters.clear()  # the fixture puts them back
    caplog.set_level(logging.INFO)
    Trainer(default_root_dir=tmp_path, logger=False, accelerator="cpu")
    assert any("litlogger" in r.getMessage() for r in caplog.records)


def test_idempotent(quiet):
    with warnings.catch_warnings():
        quiet()
        filters = list(warnings.filters)
        logger_filters = {name: list(logging.getLogger(name).filters)
                          for spec in KNOWN_NOISE_LOGS for name in spec.loggers}
        quiet()
        quiet()
        assert warnings.filters == filters
        assert {name: list(logging.getLogger(name).filters)
                for name in logger_filters} == logger_filters
        for name, installed in logger_filters.items():
            specs = [spec for spec in KNOWN_NOISE_LOGS if name in spec.loggers]
            assert len([f for f in installed if isinstance(f, MessageFilter)]) == len(specs)
