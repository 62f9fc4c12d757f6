"""Security rules of the package, checked on its source, and the guards that enforce them.

- No code from strings: no ``eval``/``exec``/``compile``/``__import__`` calls (user code comes in
  by import path, ``autotrain_pl.importing``).
- No unpickling: no ``pickle``/``dill``/``cloudpickle``/``marshal``/``shelve``/``joblib``;
  ``torch.load`` only with ``weights_only=True``; ``np.load`` only with ``allow_pickle=False``;
  YAML only through ``safe_load``. ``weights_only=False`` appears only in
  ``Trainer.save_checkpoint``, where it means "save the optimizer state too", not "unpickle".
- ``trust_remote_code`` is never on by default, and turning it on warns with the repository's name.
- An export never deletes a folder that is not an earlier export, and a cache's file names never
  lead out of its folder.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest
import torch

import autotrain_pl
from autotrain_pl.errors import AutotrainError

PACKAGE = Path(autotrain_pl.__file__).parent
UNPICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "joblib"}
UNSAFE_YAML = {"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all",
               "Loader", "UnsafeLoader", "FullLoader"}


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_constant(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _dotted(node: ast.expr) -> str:
    """``torch.load`` for ``torch.load``; ``""`` for anything that is not a dotted name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def violations(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""]
            found += [(node.lineno, f"imports {n}") for n in names
                      if n.split(".")[0] in UNPICKLERS]
        if isinstance(node, ast.Attribute) and _dotted(node.value) == "yaml" and \
                node.attr in UNSAFE_YAML:
            found.append((node.lineno, f"uses yaml.{node.attr}"))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args.args + node.args.kwonlyargs
            defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + \
                list(node.args.defaults) + list(node.args.kw_defaults)
            found += [(node.lineno, "trust_remote_code defaults to True")
                      for argument, default in zip(arguments, defaults, strict=True)
                      if argument.arg == "trust_remote_code" and _is_constant(default, True)]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and \
                node.target.id == "trust_remote_code" and _is_constant(node.value, True):
            found.append((node.lineno, "trust_remote_code defaults to True"))
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name in ("eval", "exec", "compile", "__import__"):
            found.append((node.lineno, f"calls {name}"))
        if name.split(".")[0] in UNPICKLERS:
            found.append((node.lineno, f"calls {name}"))
        if name == "torch.load" and not _is_constant(_keyword(node, "weights_only"), True):
            found.append((node.lineno, "torch.load without weights_only=True"))
        if name in ("np.load", "numpy.load") and \
                not _is_constant(_keyword(node, "allow_pickle"), False):
            found.append((node.lineno, "np.load without allow_pickle=False"))
        if _is_constant(_keyword(node, "weights_only"), False) and \
                not name.endswith("save_checkpoint"):
            found.append((node.lineno, f"{name or 'a call'} with weights_only=False"))
        if _is_constant(_keyword(node, "trust_remote_code"), True):
            found.append((node.lineno, "passes trust_remote_code=True"))
        if _is_constant(_keyword(node, "shell"), True):
            found.append((node.lineno, "runs a shell command"))
    return found


def test_the_package_loads_no_code_or_pickles_from_data():
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        broken += [f"{path.relative_to(PACKAGE.parent)}:{line}: {what}"
                   for line, what in violations(tree)]
    assert not broken, "\n".join(broken)


def test_the_checker_sees_each_kind_of_violation():
    source = """
import pickle
import yaml

def load(path, trust_remote_code=True):
    eval("1"); exec("x = 1"); compile("1", "f", "eval"); __import__("os")
    pickle.load(open(path, "rb"))
    torch.load(path); torch.load(path, weights_only=False); np.load(path)
    yaml.load(open(path), Loader=yaml.Loader)
    AutoModel.from_pretrained(path, trust_remote_code=True)
    subprocess.run(path, shell=True)
    trainer.save_checkpoint(path, weights_only=False)  # allowed: saving, not unpickling
    np.load(path, allow_pickle=False); torch.load(path, weights_only=True)  # allowed
"""
    kinds = {what for _, what in violations(ast.parse(source))}
    assert kinds == {
        "imports pickle", "trust_remote_code defaults to True", "calls eval", "calls exec",
        "calls compile", "calls __import__", "calls pickle.load",
        "torch.load without weights_only=True", "torch.load with weights_only=False",
        "np.load without allow_pickle=False", "uses yaml.load", "uses yaml.Loader",
        "passes trust_remote_code=True", "runs a shell command",
    }


def test_lightning_resumes_checkpoints_with_weights_only():
    """``trainer.fit(ckpt_path=...)`` hands ``weights_only=None`` to ``torch.load``, which means
    True in this torch: a resumed checkpoint cannot run code. Our ``last.ckpt`` holds only
    tensors and plain values (LightningCLI stores hparams as dicts), which the resume tests in
    ``tests/integration/cli/test_cli_resume.py`` load that way."""
    from torch.serialization import _default_to_weights_only

    assert _default_to_weights_only(None) is True


def _cli_sets_weights_only() -> bool:
    import inspect

    from autotrain_pl import cli

    return "weights_only" in inspect.getsource(cli)


@pytest.mark.xfail(not _cli_sets_weights_only(), strict=True,
                   reason="cli.py must pass weights_only=True when --weights_only is not given "
                          "(issue 17 report): Lightning unpickles a --ckpt_path URL fully")
def test_the_cli_loads_every_checkpoint_with_weights_only():
    """``trainer.fit(weights_only=None)`` means False for a checkpoint URL (Lightning's
    ``_load``), so ``aitrain`` must turn an unset ``--weights_only`` into True itself."""
    from autotrain_pl.cli import _build_cli_class

    cls = _build_cli_class()
    cli = object.__new__(cls)
    cli.config_init = {"fit": {"ckpt_path": "https://example.com/x.ckpt", "weights_only": None}}
    cli._subcommand_method_arguments = {"fit": {"ckpt_path", "weights_only"}}
    cli.model, cli.datamodule = object(), None
    assert cli._prepare_subcommand_kwargs("fit")["weights_only"] is True


# -- trust_remote_code -----------------------------------------------------------------------------
@pytest.fixture
def fresh_warnings(monkeypatch):
    from autotrain_pl.models import loading

    monkeypatch.setattr(loading, "_WARNED_REMOTE_CODE", set())
    return loading


class _StubTokenizer:
    pad_token = "<pad>"
    eos_token = "</s>"


def test_trust_remote_code_warns_with_the_repository(fresh_warnings, monkeypatch, caplog):
    import transformers

    seen = []
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained",
                        lambda source, **options: seen.append(options) or _StubTokenizer())
    with caplog.at_level(logging.WARNING, logger="autotrain_pl.models.loading"):
        fresh_warnings.load_tokenizer("someone/custom-model", trust_remote_code=True)
        fresh_warnings.load_tokenizer("someone/custom-model", trust_remote_code=True)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # once per repository, not per load
    assert "trust_remote_code" in warnings[0] and "'someone/custom-model'" in warnings[0]
    assert seen == [{"trust_remote_code": True}] * 2


def test_trust_remote_code_is_off_and_silent_by_default(fresh_warnings, monkeypatch, caplog):
    import transformers

    seen = []
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained",
                        lambda source, **options: seen.append(options) or _StubTokenizer())
    with caplog.at_level(logging.WARNING, logger="autotrain_pl.models.loading"):
        fresh_warnings.load_tokenizer("someone/custom-model")
    assert seen == [{"trust_remote_code": False}]
    assert not [r for r in caplog.records if "trust_remote_code" in r.getMessage()]


def test_loading_a_model_with_remote_code_warns_before_its_code_runs(fresh_warnings,
                                                                        monkeypatch, caplog):
    import transformers

    def refuse(source, **options):
        assert [r for r in caplog.records if "'someone/custom-model'" in r.getMessage()]
        raise OSError("offline")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    with caplog.at_level(logging.WARNING, logger="autotrain_pl.models.loading"), \
            pytest.raises(AutotrainError, match="could not load model"):
        fresh_warnings.load_model("someone/custom-model", trust_remote_code=True)


# -- paths that must not escape their folder -------------------------------------------------------
def test_an_export_does_not_replace_a_folder_that_is_not_an_export(tmp_path):
    from autotrain_pl.models.export import export_model

    data = tmp_path / "my_data"
    data.mkdir()
    (data / "train.jsonl").write_text("{}\n")
    with pytest.raises(AutotrainError, match="holds files but no earlier export"):
        export_model(None, None, data)
    assert (data / "train.jsonl").exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    with pytest.raises(AutotrainError, match="not a folder"):
        export_model(None, None, a_file)
    with pytest.raises(AutotrainError, match="folder of its own"):
        export_model(None, None, Path.home())
    assert a_file.read_text() == "keep me"


def test_an_export_replaces_an_earlier_export_or_an_empty_folder(tmp_path):
    from autotrain_pl.models.export import check_replaceable
    from autotrain_pl.models.references import EXPORT_METADATA

    earlier = tmp_path / "export"
    earlier.mkdir()
    (earlier / EXPORT_METADATA).write_text("{}")
    (earlier / "model.safetensors").write_bytes(b"")
    check_replaceable(earlier)
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty")
    check_replaceable(tmp_path / "new")


def test_an_export_path_through_a_link_is_refused(tmp_path):
    from autotrain_pl.models.export import check_replaceable

    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "export").symlink_to(target, target_is_directory=True)
    with pytest.raises(AutotrainError, match="a link"):
        check_replaceable(tmp_path / "export")


@pytest.mark.parametrize("ref", ["builtin:../../etc", "builtin:tiny/../../x", "builtin:/tmp/x"])
def test_a_builtin_name_cannot_name_a_path(ref, tmp_path, monkeypatch):
    from autotrain_pl.models.builtin import materialize_builtin

    monkeypatch.setenv("AUTOTRAIN_PL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(AutotrainError, match="unknown builtin model"):
        materialize_builtin(ref)
    assert not (tmp_path / "cache").exists()


def test_a_cache_column_name_cannot_lead_out_of_its_folder(tmp_path):
    from autotrain_pl.training.frozen_cache import FrozenValueCache

    with pytest.raises(ValueError, match="identifiers"):
        FrozenValueCache(tmp_path / "cache", [1], {"../escaped": ("float32", 1)})
    assert not (tmp_path / "escaped.npy").exists()


def test_a_cache_file_that_holds_a_pickle_is_not_unpickled(tmp_path):
    """A cache folder is shared and can be tampered with: object arrays (pickles) are refused."""
    import numpy as np

    from autotrain_pl.training.frozen_cache import FrozenValueCache

    cache = FrozenValueCache(tmp_path / "cache", [1, 1], {"values": ("float32", 1)})
    cache.flush()
    np.save(tmp_path / "cache" / "filled-rank1.npy", np.array([object()], dtype=object),
            allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        FrozenValueCache(tmp_path / "cache", [1, 1], {"values": ("float32", 1)})


def test_a_client_state_file_that_would_run_code_is_refused(tmp_path, capsys):
    """``TrainingClient.load_state`` reads with ``weights_only=True``: a state file that would run
    code when unpickled is refused, and the code does not run."""
    from autotrain_pl.client.state import load_client_state

    class Payload:
        def __reduce__(self):
            return (print, ("this ran",))

    path = tmp_path / "client_state.pt"
    torch.save({"format": 1, "x": Payload()}, path)
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        load_client_state(None, path)
    assert "this ran" not in capsys.readouterr().out
