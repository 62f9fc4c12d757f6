"""The inputs the fuzz suite found product bugs with, kept as fixed cases.

Each test names what used to happen. Data cases run through ``aitrain fit`` (the harness); the
rest call the piece that was fixed.
"""

from __future__ import annotations

import json
import logging

import pytest
from fuzz_harness import assert_passes_preflight, assert_user_error, run_aitrain

from autotrain_pl.errors import AutotrainError

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}


def jsonl(*rows) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def fit(path, objective: str = "SFTModule", root=None) -> list[str]:
    return ["fit", "--model", f"autotrain_pl.objectives.{objective}",
            "--model.init_args.model_name_or_path", "builtin:tiny",
            "--data", "autotrain_pl.data.ChatDataModule", "--data.init_args.data_path", str(path),
            "--trainer.default_root_dir", str(root or path.parent / "run"),
            "--trainer.max_steps", "1", "--trainer.accelerator", "cpu"]


CASES = {
    # a UnicodeDecodeError traceback when the row was first read (Arrow keeps the bytes)
    "non_utf8.jsonl": (jsonl(GOOD) + b'{"messages": [{"role": "user", "content": "h\xffi"}]}\n',
                       2, ["not valid UTF-8", "0xff"]),
    # a traceback from reading the file as UTF-8 to see if it is a JSON array
    "utf16.jsonl": (jsonl(GOOD).decode().encode("utf-16"), 1, ["UTF-16"]),
    # "could not be read as csv ('utf-8' codec can't decode ...)": no line
    "latin1.csv": ("prompt,completion\nhi,there\ncaf\xe9,yo\n".encode("latin-1"), 3,
                   ["not valid UTF-8"]),
    # "could not be read as json (Column() changed from object to string)": no line
    "array_row.jsonl": (jsonl(GOOD) + b"[1, 2]\n", 2, ["JSON object"]),
    # "x.json row 1": no line
    "array.json": (json.dumps([GOOD, {"messages": [{"role": "bot", "content": "x"}]}],
                              indent=2).encode(), 14, ["'bot'"]),
    # "could not be read as csv (Error tokenizing data ...)"
    "ragged.csv": (b"prompt,completion\nhi,there\nhello,a,b\n", 3, ["3 cells"]),
    # a quoted cell with a line break: the row's line was counted as if rows were one line each
    "multiline.csv": (b'prompt,completion\n"a\nb",yo\nhi,\n', 4, ["completion"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file_names_the_line(name, tmp_path):
    content, line, names = CASES[name]
    path = tmp_path / name
    path.write_bytes(content)
    outcome = run_aitrain(fit(path), "regression")
    assert_user_error(outcome, names=names, line=line, path=str(path))


def test_a_huge_unknown_role_makes_a_short_error(tmp_path):
    """The whole 100,000-character role was in the one-line error."""
    path = tmp_path / "role.jsonl"
    path.write_bytes(jsonl(GOOD, {"messages": [{"role": "u" * 100_000, "content": "a"}]}))
    message = assert_user_error(run_aitrain(fit(path), "regression"), line=2, path=str(path))
    assert len(message) < 500


def test_mixed_type_columns_read_back_unchanged(tmp_path):
    """A prompt that is a message list in one row and a string in others is valid; datasets
    stored such a column as JSON text and read the string "0" back as the number 0, so a valid
    row was refused ("got int") and the wrong row was named."""
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(jsonl(
        {"prompt": [{"role": "user", "content": "0"}],
         "completion": [{"role": "assistant", "content": "0"}]},
        {"prompt": "null", "completion": "0"}, {"prompt": "[1]", "completion": "true"}))
    assert_passes_preflight(run_aitrain(fit(path), "regression"))
    from autotrain_pl.data.reading import load_conversations

    records = load_conversations(str(path))
    assert [m.content for m in records[1].messages] == ["null", "0"]
    assert [m.content for m in records[2].messages] == ["[1]", "true"]


def test_a_csv_margin_is_a_number(tmp_path):
    """CSV cells are text: a margin column of "0.5" was refused as not a number."""
    path = tmp_path / "pairs.csv"
    path.write_text("prompt,chosen,rejected,margin\nWhat is 2+2?,4,5,0.5\nAnd 3+3?,6,7,1\n")
    assert_passes_preflight(run_aitrain(fit(path, "DPOModule"), "regression"))


def test_a_parse_error_is_not_logged_as_well(tmp_path):
    """datasets logged "Failed to load JSON from file ..." as an ERROR before our one line."""
    from autotrain_pl.data.sources import load_source

    path = tmp_path / "cut.jsonl"
    path.write_bytes(jsonl(GOOD)[:-10])
    seen: list[str] = []
    handler = logging.Handler(level=logging.ERROR)
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger("datasets")
    logger.addHandler(handler)
    try:
        with pytest.raises(AutotrainError, match="line 1: malformed JSON"):
            load_source(str(path))
    finally:
        logger.removeHandler(handler)
    assert not seen


@pytest.mark.parametrize("options, key", [
    ({"eval_batch_size": 0}, "eval_batch_size"),  # became batch_size silently (0 or 8)
    ({"seed": -1}, "seed"),  # numpy's error, only with a validation split
    ({"token_weights": {"user": float("nan")}}, "token_weights"),
    ({"token_weights": {"user": -1.0}}, "token_weights"),
])
def test_data_options_out_of_range(options, key):
    from autotrain_pl.data import ChatDataModule

    with pytest.raises(AutotrainError, match=key):
        ChatDataModule(data_path="synthetic:arithmetic?n=8", **options)


@pytest.mark.parametrize("trainer, key", [
    ({"max_steps": -5}, "trainer.max_steps"),  # MisconfigurationException after the model loaded
    ({"gradient_clip_val": float("nan")}, "trainer.gradient_clip_val"),
    ({"devices": "0"}, "trainer.devices"),
    ({"limit_train_batches": 1.5}, "trainer.limit_train_batches"),
])
def test_trainer_numbers_out_of_range(trainer, key):
    from autotrain_pl.config_errors import check_run_numbers

    with pytest.raises(AutotrainError, match=key.replace(".", r"\.")):
        check_run_numbers({"trainer": trainer})


def test_valid_trainer_numbers_pass():
    from autotrain_pl.config_errors import check_run_numbers

    check_run_numbers({"seed_everything": 0, "checkpoint_every_n_steps": 50, "trainer": {
        "max_steps": -1, "max_epochs": None, "val_check_interval": 0.5, "devices": "auto",
        "limit_val_batches": 10, "gradient_clip_val": 1.0, "num_sanity_val_steps": -1,
        "accumulate_grad_batches": 4, "fast_dev_run": True}})


def test_empty_csv_cells_of_tools_and_margin_mean_none(tmp_path):
    """A CSV with tools (or margins) on some rows only: an empty cell was refused as "not valid
    JSON" (or "not a number"), naming a valid row."""
    path = tmp_path / "tools.csv"
    path.write_text('prompt,completion,tools\nhi,yo,\nhey,there,[]\n')
    assert_passes_preflight(run_aitrain(fit(path), "regression"))
    path = tmp_path / "margins.csv"
    path.write_text("prompt,chosen,rejected,margin\nWhat is 2+2?,4,5,\nAnd 3+3?,6,7,1.5\n")
    assert_passes_preflight(run_aitrain(fit(path, "DPOModule"), "regression"))


def test_a_cut_quoted_csv_cell_after_a_multiline_one_names_its_line(tmp_path):
    """The line of the record after a two-line cell was counted from the cell's first line."""
    path = tmp_path / "cut.csv"
    path.write_bytes(b'prompt,completion\n0,"line one\nline two"\n0,"0,')
    outcome = run_aitrain(fit(path), "regression")
    assert_user_error(outcome, names=["malformed CSV"], line=4, path=str(path))
