"""Fuzzed data files through ``aitrain fit``: every bad file fails in one line that names the file
and the line (or only the file, when the whole file is at fault), before a model loads; valid
files pass every check before the model load.

Categories (``fuzz_data.CATEGORIES``): truncated JSON/JSONL/CSV, wrong types, missing columns,
extra columns, empty files, non-UTF-8 bytes, huge lines, wrong roles; over chat ``messages`` rows,
prompt/completion rows and chosen/rejected preference rows, in jsonl, json and csv.
"""

from __future__ import annotations

import itertools
import json

import pytest
from fuzz_data import CATEGORIES, HUGE, DataCase, valid_files
from fuzz_harness import (
    BASE_ARGV,
    assert_passes_preflight,
    assert_user_error,
    fuzz_settings,
    run_aitrain,
)
from hypothesis import given

#: Examples per category in CI (about 0.3 s each; a huge line about 1 s).
CI_EXAMPLES = {"truncated": 5, "wrong_types": 6, "missing_columns": 5, "extra_columns": 5,
               "empty_files": 4, "non_utf8": 5, "huge_lines": 3, "wrong_roles": 5}
_numbers = itertools.count()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_data")


def write(workdir, case: DataCase) -> str:
    path = workdir / f"case{next(_numbers)}.{case.suffix}"
    path.write_bytes(case.content)
    return str(path)


def fit_argv(case: DataCase, path: str, workdir) -> list[str]:
    return ["fit", "--model", f"autotrain_pl.objectives.{case.objective}",
            "--model.init_args.model_name_or_path", "builtin:tiny",
            "--data", "autotrain_pl.data.ChatDataModule", "--data.init_args.data_path", path,
            "--trainer.default_root_dir", str(workdir / "run"), *BASE_ARGV]


def test_every_category_has_a_ci_budget():
    assert set(CI_EXAMPLES) == set(CATEGORIES)


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_bad_data_fails_in_one_line_naming_the_place(category, workdir):
    @fuzz_settings(CI_EXAMPLES[category])
    @given(case=CATEGORIES[category])
    def check(case: DataCase) -> None:
        path = write(workdir, case)
        outcome = run_aitrain(fit_argv(case, path, workdir), f"data:{category}")
        assert_user_error(outcome, names=case.names, line=case.line, path=path)

    check()


@fuzz_settings(5)
@given(case=valid_files())
def test_valid_data_passes_every_check_before_the_model_loads(case, workdir):
    path = write(workdir, case)
    assert_passes_preflight(run_aitrain(fit_argv(case, path, workdir), "data:valid"))


def test_a_huge_valid_line_passes(workdir):
    """A reply of megabytes is truncated to max_length, not refused."""
    rows = [{"messages": [{"role": "user", "content": "Write a lot."},
                          {"role": "assistant", "content": "word " * (HUGE // 5)}]},
            {"messages": [{"role": "user", "content": "Hi"},
                          {"role": "assistant", "content": "Hello"}]}]
    case = DataCase("messages", "jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    path = write(workdir, case)
    assert_passes_preflight(run_aitrain(fit_argv(case, path, workdir), "data:valid"))


def test_a_bad_row_after_the_first_64_fails_before_the_model_loads(workdir):
    """The preflight checks every row's fields, not only the rows it tokenizes."""
    good = {"messages": [{"role": "user", "content": "Hi"},
                         {"role": "assistant", "content": "Hello"}]}
    bad = {"messages": [{"role": "bot", "content": "Hi"}]}
    rows = [good] * 500 + [bad] + [good] * 10
    case = DataCase("messages", "jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    path = write(workdir, case)
    outcome = run_aitrain(fit_argv(case, path, workdir), "data:late_bad_row")
    assert_user_error(outcome, names=["messages[0].role", "'bot'"], line=501, path=path)


def test_prompt_only_rows_pass_for_grpo(workdir):
    """RL trains on prompts: rows without a reply (the answer in a column) are valid for GRPO."""
    rows = [{"messages": [{"role": "user", "content": f"What is {i} + {i}?"}],
             "answer": str(2 * i)} for i in range(4)]
    case = DataCase("messages", "jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    path = write(workdir, case)
    argv = fit_argv(case, path, workdir)
    argv[argv.index("autotrain_pl.objectives.SFTModule")] = "autotrain_pl.objectives.GRPOModule"
    assert_passes_preflight(run_aitrain(argv, "data:valid"))
