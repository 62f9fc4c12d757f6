"""End-to-end: the one-call factory and the CLI entry function in a real subprocess."""

import json
import os
import subprocess
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from autotrain_pl.errors import AutotrainError  # noqa: E402
from autotrain_pl.generation import (  # noqa: E402
    MessageCompleter,
    SamplingConfig,
    TokenCompleter,
    create_completer,
)
from autotrain_pl.rendering.messages import Message  # noqa: E402

SCRIPT = ("import sys; from autotrain_pl.generation.commands import generate_command; "
          "sys.exit(generate_command(sys.argv[1:]))")


def test_create_completer_builtin_message_and_token():
    completer = create_completer("builtin:tiny", device="cpu")
    assert isinstance(completer, MessageCompleter)
    assert completer.renderer.name == "chatml"  # no chat template in the tokenizer: auto -> chatml
    reply = completer([Message("user", "hi")], SamplingConfig(max_new_tokens=3, temperature=0))
    assert reply.role == "assistant"
    tokens = create_completer("builtin:tiny", kind="token")
    assert isinstance(tokens, TokenCompleter) and tokens.device.type in ("cpu", "cuda", "mps")
    with pytest.raises(AutotrainError, match="kind"):
        create_completer("builtin:tiny", kind="words")
    with pytest.raises(AutotrainError, match="device"):
        create_completer("builtin:tiny", device="tpu")


def test_create_completer_uses_the_exports_renderer(tmp_path):
    from autotrain_pl.models import load_model, load_tokenizer

    export = tmp_path / "run" / "export"
    load_model("builtin:tiny").save_pretrained(export)
    load_tokenizer("builtin:tiny").save_pretrained(export)
    (export / "autotrain.json").write_text(json.dumps({"format_version": 1, "renderer": "chatml"}))
    with pytest.warns(UserWarning, match="exported with 'chatml'"):
        completer = create_completer(str(tmp_path / "run"), chat_format="llama3")
    assert completer.renderer.name == "chatml"


def test_generate_command_reads_piped_stdin():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, "--model", "builtin:tiny", "--max_new_tokens", "3",
         "--temperature", "0"],
        input='What is 2+2?\n{"messages": [{"role": "user", "content": "hi"}]}\n',
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["prompt"] for r in records] == ["What is 2+2?", [{"role": "user", "content": "hi"}]]
    assert all(1 <= r["num_tokens"] <= 3 for r in records)


def test_generate_command_unknown_model_is_a_one_line_error(capsys):
    from autotrain_pl.generation.commands import generate_command

    assert generate_command(["--model", "builtin:nope", "hi"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "builtin:nope" in err and len(err.splitlines()) == 1
