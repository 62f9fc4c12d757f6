"""An export behaves outside our code exactly as inside: for every chat format, a short fit's export
loaded by plain ``transformers`` (in a subprocess that imports nothing of ours) answers through
``apply_chat_template`` + greedy ``generate``, stops by itself, and says what ``aitrain generate``
says."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import pytest
import torch

from autotrain_pl.cli import run_cli
from autotrain_pl.data import ChatDataModule
from autotrain_pl.objectives import SFTModule

FORMATS = ["chatml", "alpaca", "llama2", "llama3", "vicuna", "zephyr", "mistral"]
# (chat format, LoRA export mode): full fine-tunes export every weight; LoRA runs merge the adapter
# or save it alone.
VARIANTS = [(fmt, None) for fmt in FORMATS] + [("chatml", "merged"), ("chatml", "adapter")]
SYSTEM = "Answer with the code."
CODES = {"A": "alpha 1", "B": "bravo 2", "C": "charlie 3", "D": "delta 4"}
QUESTION = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Code for B?"}]
MAX_NEW_TOKENS = 24

# Only transformers (and torch, which it needs): the serving side knows nothing of autotrain_pl.
SERVE = textwrap.dedent(
    """
    import json, sys
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    question, max_new_tokens, results = json.loads(sys.argv[1]), int(sys.argv[2]), {}
    for export in sys.argv[3:]:
        tokenizer = AutoTokenizer.from_pretrained(export)
        model = AutoModelForCausalLM.from_pretrained(export)
        # Loading an adapter, transformers reads the base's generation config; pass the export's.
        generation = GenerationConfig.from_pretrained(export)
        inputs = tokenizer.apply_chat_template(
            question, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                generation_config=generation)
        new = output[0, inputs["input_ids"].shape[1]:].tolist()
        results[export] = {
            "prompt": inputs["input_ids"][0].tolist(),
            "new_tokens": new,
            "text": tokenizer.decode(new, skip_special_tokens=True),
            "eos_token_id": generation.eos_token_id,
        }
    assert not any(name.startswith("autotrain_pl") for name in sys.modules)
    print(json.dumps(results))
    """
)


def short_fit(root: Path, chat_format: str, lora_mode: str | None) -> Path:
    rows = [
        {"messages": [{"role": "system", "content": SYSTEM},
                      {"role": "user", "content": f"Code for {key}?"},
                      {"role": "assistant", "content": code}]}
        for key, code in CODES.items()
    ] * 8
    data_file = root / "codes.jsonl"
    data_file.write_text("\n".join(json.dumps(row) for row in rows))
    torch.manual_seed(0)
    data = ChatDataModule(str(data_file), tokenizer="builtin:tiny", chat_format=chat_format,
                          batch_size=8, seed=0)
    options = {}
    if lora_mode is not None:
        options = {"lora": {"r": 8, "alpha": 16, "dropout": 0.0}, "export_mode": lora_mode}
    module = SFTModule("builtin:tiny", learning_rate=1e-2 if lora_mode else 3e-3,
                       lr_scheduler="constant", **options)
    trainer = L.Trainer(accelerator="cpu", max_steps=100, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False,
                        default_root_dir=str(root), num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(module, datamodule=data)
    return root / "export"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Each variant's export, and what plain transformers generated from it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        exports = {
            variant: short_fit(tmp_path_factory.mktemp(f"{variant[0]}-{variant[1]}"), *variant)
            for variant in VARIANTS
        }
    finally:
        torch.set_num_threads(previous)
    done = subprocess.run(
        [sys.executable, "-c", SERVE, json.dumps(QUESTION), str(MAX_NEW_TOKENS),
         *map(str, exports.values())],
        capture_output=True, text=True, timeout=600,
        env={"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
             "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return {variant: (path, results[str(path)]) for variant, path in exports.items()}


def aitrain_generate(export: Path, capsys) -> dict:
    capsys.readouterr()
    code = run_cli(["generate", "--model", str(export), "--system", SYSTEM, "--temperature", "0",
                    "--max_new_tokens", str(MAX_NEW_TOKENS), QUESTION[-1]["content"]])
    assert code == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("variant", VARIANTS, ids=[f"{f}-{m or 'full'}" for f, m in VARIANTS])
def test_plain_transformers_stops_and_matches_aitrain_generate(variant, served, capsys):
    export, result = served[variant]
    new_tokens = result["new_tokens"]
    assert len(new_tokens) < MAX_NEW_TOKENS, f"never stopped: {result['text']!r}"
    assert new_tokens[-1] in result["eos_token_id"]
    assert result["text"].strip() == "bravo 2", "the short fit taught the answer"
    ours = aitrain_generate(export, capsys)
    assert ours["stop_reason"] in ("eos", "stop")
    assert ours["completion"] == result["text"].strip()
