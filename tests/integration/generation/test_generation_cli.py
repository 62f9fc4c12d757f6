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


def test_create_completer_adds_the_formats_tokens_and_grows_the_embeddings(tmp_path):
    """A plain HF model whose tokenizer lacks ChatML's tokens: the factory adds them to the
    tokenizer, the renderer uses them and the model gets embedding rows for them."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    backend.train_from_iterator(["hello there, how are you? I am fine."] * 20, trainer=trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>",
                                                     eos_token="</s>")
    config = transformers.LlamaConfig(vocab_size=len(tokenizer), hidden_size=32,
                                      intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2)
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert "<|im_end|>" not in tokenizer.get_vocab()

    completer = create_completer(str(tmp_path), chat_format="chatml", device="cpu")
    vocab = completer.tokenizer.get_vocab()
    assert "<|im_start|>" in vocab and "<|im_end|>" in vocab
    assert completer.renderer.stop_token_ids() == [vocab["<|im_end|>"]]
    rows = completer.model.get_input_embeddings().weight.shape[0]
    assert rows == len(completer.tokenizer) > len(tokenizer)
    reply = completer([Message("user", "hello")], SamplingConfig(max_new_tokens=3, temperature=0))
    assert reply.role == "assistant"


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
    assert err.startswith("aitrain: error:") and "builtin:nope" in err and len(err.splitlines()) == 1
