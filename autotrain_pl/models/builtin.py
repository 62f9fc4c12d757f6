"""Builtin models: small, seeded, randomly initialised Llama models with a shipped tokenizer.

They are real ``transformers`` classes, created offline in seconds, so tests, the quickstart and
benchmarks never touch a model hub. A builtin is materialised once into a cache directory and then
loaded with ``from_pretrained`` like any other local model, so every loading option (dtype,
attention implementation, 4-bit/8-bit quantization) goes through the same code path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from autotrain_pl.errors import AutotrainError

BUILTIN_PREFIX = "builtin:"
TOKENIZER_DIR = Path(__file__).parent / "builtin_tokenizer"

#: name -> LlamaConfig overrides. Parameter counts are with the 4096-token builtin vocabulary.
#: Every linear dimension is a multiple of 64, which bitsandbytes' CPU 4-bit kernels require.
BUILTIN_CONFIGS: dict[str, dict] = {
    # ~1.0M parameters: unit and integration tests.
    "tiny": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True),
    # ~4.5M parameters: the offline quickstart (learns 2-digit addition in a few CPU minutes).
    "mini": dict(hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                 num_attention_heads=8, num_key_value_heads=4, tie_word_embeddings=True),
    # ~29M parameters: throughput benchmarks.
    "small": dict(hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                  num_attention_heads=8, num_key_value_heads=8, tie_word_embeddings=False),
}
BUILTIN_SEED = 0


def is_builtin(ref: str) -> bool:
    return ref.startswith(BUILTIN_PREFIX)


def builtin_name(ref: str) -> str:
    name = ref[len(BUILTIN_PREFIX):]
    if name not in BUILTIN_CONFIGS:
        known = ", ".join(f"builtin:{n}" for n in BUILTIN_CONFIGS)
        raise AutotrainError(f"unknown builtin model {ref!r}; use one of: {known}")
    return name


def builtin_config(name: str):
    from transformers import AutoTokenizer, LlamaConfig

    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    return LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        rms_norm_eps=1e-5,
        **BUILTIN_CONFIGS[name],
    )


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "autotrain_pl"
    return Path(os.environ.get("AUTOTRAIN_PL_CACHE", default))


def materialize_builtin(ref: str) -> Path:
    """Return a local directory holding the builtin model and tokenizer, creating it once.

    The weights come from ``torch.manual_seed(BUILTIN_SEED)``, so every machine builds the same
    model. The directory is written to a temporary name and renamed, so concurrent processes never
    see a half-written model.
    """
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    name = builtin_name(ref)
    target = cache_root() / "builtin" / f"{name}-seed{BUILTIN_SEED}-v2"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(BUILTIN_SEED)
            model = LlamaForCausalLM(builtin_config(name))
        model.save_pretrained(staging)
        AutoTokenizer.from_pretrained(TOKENIZER_DIR).save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process won the race; its copy is identical
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
