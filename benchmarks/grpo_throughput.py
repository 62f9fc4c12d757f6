"""GRPO throughput: our GRPOModule vs TRL 1.16's GRPOTrainer, rollout + scoring + update, in one
process run.

What is compared: whole optimizer steps of GRPO, each one sampling G completions of every prompt of
the step with the policy itself, scoring them with the reward function, computing group-relative
advantages and doing one policy-gradient update (``num_iterations`` 1). Both sides run:

- the same model: ``--model`` (``builtin:small`` by default, a seeded ~30M-parameter Llama),
  loaded by ``autotrain_pl.models.load_model``, fp32 on the CPU (``bf16=False``,
  ``use_cpu=True`` for TRL; ``precision="32-true"`` for ours);
- the same prompts: the quickstart's arithmetic questions,
  ``synthetic:arithmetic?n=<steps x prompts>&seed=0``, rendered with ChatML. Ours through
  ``ChatDataModule(chat_format="chatml")``; TRL gets the user turn as a conversational
  ``prompt`` and its tokenizer carries our renderer's ``chat_template()``. The script checks that
  TRL's prompt ids equal ours (``prompt_ids_identical``);
- the same stop tokens: our completer stops at the renderer's end of turn (``<|im_end|>``) and
  the tokenizer's EOS; TRL stops at ``model.generation_config.eos_token_id``, which the script
  sets to the same ids (``models.export.stop_token_ids``, what our export writes);
- the same G (``--generations``), prompts per optimizer step (``--prompts``), max new tokens
  (``--max_new_tokens``), temperature 1.0 (top-p 1, no top-k), loss type ``dapo``, beta 0 (no
  reference model on either side), epsilon 0.2, ``scale_rewards="group"``;
- the same optimizer: fused AdamW (betas 0.9/0.999, eps 1e-8, weight decay 0), constant learning
  rate ``--lr``, no warm-up;
- the same reward: ``exact_number`` below, a plain function that returns 1.0 when the reply is
  the reference number (after stripping whitespace; numbers compared as numbers), else 0.0.
  Ours calls it through the reward registry (``rl_reward_fn``), TRL as a reward function on the
  decoded completion. Before timing, the script scores probe completions (the correct answer, a
  wrong one, padded ones, and real samples of both sides) both ways, with our built-in
  ``correctness`` too, and reports the agreement (``reward_check``).

Batch geometry. With P prompts and G generations per step, TRL's ``per_device_train_batch_size``
counts completions: it is P x G, with ``gradient_accumulation_steps=1`` and
``steps_per_generation=1`` (so ``generation_batch_size`` = P x G): one generation round and one
optimizer step per P prompts, and the update sees all P x G completions in one micro-batch. Ours
gets ``data.batch_size=P``, ``rl_mini_batch_size=None`` (all P x G completions in one
forward/backward) and ``rl_chunk_size=P`` (all P prompts x G samples in one ``generate`` call, as
TRL's single call). The script checks the trainers' resolved values and that every timed step
saw P x G completions on both sides.

Reward settings (``--rewards``):

- ``exact``: the exact-match reward alone. A randomly initialised builtin never answers right,
  so every group's G rewards are equal (all 0): ours skips the policy forward and backward of
  such groups (no gradient can come from them; their tokens still count, as in TRL), TRL runs
  the full update with zero advantages. This is the cost of GRPO on a hopeless start.
- ``dense``: exact match plus 0.01 x the stripped reply's length in characters, so that the G replies of
  a prompt almost always differ and both sides run the full update on (nearly) every group. This
  compares the update path itself. ``skipped_groups`` reports how many groups ours skipped.

Runners (per setting): ``ours`` (``GRPOModule`` through ``lightning.Trainer``, no logger, no
checkpointing, ``export=False``), ``trl`` (``GRPOTrainer`` with its defaults, i.e. gradient
checkpointing ON) and ``trl_nogc`` (``gradient_checkpointing=False``). Both clip gradients at
norm 1.0 (TRL's default ``max_grad_norm``, and ours).

Where the speed comes from: ours encodes each prompt once for its G samples, in the rollout (the
prompt's KV cache is filled once and repeated G times; ``generate`` with
``num_return_sequences`` would encode G copies) and in the update (the G completions of a prompt
are packed into one row behind the prompt, ``objectives.rl.packing``); the LM head runs at the
completion tokens only.

Timing (``step_timing.StepTimer``, ``time_trl_steps``): wall and process-CPU time of each
optimizer step, from Lightning's ``on_train_batch_start`` to ``on_train_batch_end`` (ours) and
from ``on_step_begin`` to ``on_step_end`` (TRL): each holds sampling, scoring, advantages, the
forward/backward and the optimizer step. The first ``--warmup`` steps are not timed; a run's
figure is its median step. ``rollout_s`` is the median time of the sampling + scoring part
(ours: ``GRPOModule.rollouts``; TRL: ``_generate_and_score_completions``). Runners alternate for
``--rounds`` rounds in rotating order and each keeps its best round (its best CPU-time round
for ``cpu_samples_per_s``); ``samples_per_s_all_rounds`` lists every round.

Figures: ``samples_per_s`` (completions per second = P x G / median step), ``tokens_per_s``
(prompt + completion tokens of the step's sequences, no padding), ``cpu_samples_per_s``
(process CPU time). ``ratios``: ``ours_vs_trl`` and ``ours_vs_trl_nogc`` (ours / peer samples per
second, higher is better), suffixed ``_dense`` for the dense setting; ``cpu_time_ratios`` the same
from CPU time (steadier with ``--threads 1`` on a busy machine).

    python benchmarks/grpo_throughput.py --quick   # ~2 minutes: P=4, G=8, 3 steps, 2 rounds
    python benchmarks/grpo_throughput.py           # ~15-20 minutes: P=16, G=8, 6 steps, 3 rounds

Add ``--threads 1`` when other processes share the cores: with two intra-op threads on a busy
2-core machine, measured here, one ``generate`` call of this model ran 3-9x slower than with one
thread (OpenMP threads waiting on each other), which swamps what is being compared.

Writes ``benchmarks/results/grpo_throughput.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
from step_timing import StepTimer, time_trl_steps  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "grpo_throughput.json"
SETTINGS = ("exact", "dense")
SIDES = ("ours", "trl", "trl_nogc")
PEERS = ("trl", "trl_nogc")
CHAT_FORMAT = "chatml"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


# -- the reward, one plain function for both sides ------------------------------------------------
def exact_number(reply: str, reference: str) -> float:
    """1.0 when ``reply`` is the reference number (whitespace stripped, compared as numbers)."""
    reply, reference = reply.strip(), reference.strip()
    return float(_NUMBER.fullmatch(reply) is not None and float(reply) == float(reference))


def dense_reward(reply: str, reference: str) -> float:
    """Exact match plus 0.01 per character of the stripped reply: the G replies of a prompt
    differ. (TRL's decoding keeps the whitespace around a reply that our ``parse_response``
    strips, so both functions strip.)"""
    return exact_number(reply, reference) + 0.01 * len(reply.strip())


REWARDS = {"exact": exact_number, "dense": dense_reward}


def ours_exact(reply: str, reference: str | None, **context) -> float:
    """Our reward-registry signature around ``exact_number``."""
    return exact_number(reply, reference)


def ours_dense(reply: str, reference: str | None, **context) -> float:
    """Our reward-registry signature around ``dense_reward``."""
    return dense_reward(reply, reference)


def register_rewards() -> None:
    """Our side: the same functions in the reward registry (``rl_reward_fn: bench_<setting>``)."""
    from autotrain_pl.rl import REWARD_FUNCTIONS

    REWARD_FUNCTIONS.register("bench_exact")(ours_exact)
    REWARD_FUNCTIONS.register("bench_dense")(ours_dense)


def trl_reward(setting: str):
    """TRL's side: the reply is the decoded assistant message of each completion."""
    function = REWARDS[setting]

    def reward(completions, reference, **kwargs):
        return [function(c[0]["content"] if isinstance(c, list) else c, r)
                for c, r in zip(completions, reference, strict=True)]

    reward.__name__ = f"bench_{setting}"
    return reward


# -- data -----------------------------------------------------------------------------------------
def data_path(n_rows: int) -> str:
    return f"synthetic:arithmetic?n={n_rows}&seed=0"


def data_module(model_ref: str, path: str, prompts: int):
    from autotrain_pl.data import ChatDataModule

    return ChatDataModule(path, tokenizer=model_ref, chat_format=CHAT_FORMAT, batch_size=prompts,
                          max_length=64, seed=0)


def trl_tokenizer(model_ref: str):
    from autotrain_pl.models import load_tokenizer
    from autotrain_pl.rendering import get_renderer

    tokenizer = load_tokenizer(model_ref)
    renderer = get_renderer(CHAT_FORMAT, tokenizer)
    tokenizer.chat_template = renderer.chat_template()
    return tokenizer, renderer


def trl_rows(rows: list[dict]) -> list[dict]:
    """Conversational prompts (the user turn) with the reference answer as a column."""
    return [{"prompt": [m for m in r["messages"] if m["role"] != "assistant"],
             "reference": r["reference"]} for r in rows]


# -- ours -----------------------------------------------------------------------------------------
def run_ours(args, setting: str, path: str) -> dict:
    import lightning as L

    from autotrain_pl.objectives import GRPOModule

    timer = StepTimer(args.warmup)
    per_step = args.prompts * args.generations
    step_tokens, rollout_s, completions, lengths, skipped, samples = [0], [], [], [], [], []

    torch.manual_seed(0)
    module = GRPOModule(
        args.model, num_generations=args.generations, max_new_tokens=args.max_new_tokens,
        temperature=1.0, top_p=1.0, top_k=None, loss_type="dapo", beta=0.0, epsilon=0.2,
        scale_rewards="group", num_iterations=1, rl_env_type="arithmetic",
        rl_reward_fn=f"bench_{setting}", rl_chunk_size=args.prompts, rl_mini_batch_size=None,
        learning_rate=args.lr, lr_scheduler="constant", weight_decay=0.0, optimizer="adamw",
        export=False)
    original_rollouts = module.rollouts

    def timed_rollouts(problems, group_size, greedy=False):
        start = time.perf_counter()
        rollouts = original_rollouts(problems, group_size, greedy)
        rollout_s.append(time.perf_counter() - start)
        step_tokens[0] = sum(len(r.token_ids) for r in rollouts)
        completions.append(len(rollouts))
        lengths.append(statistics.mean(r.completion_length for r in rollouts))
        rewards = [r.reward for r in rollouts]
        groups = [rewards[i:i + group_size] for i in range(0, len(rewards), group_size)]
        skipped.append(sum(max(g) == min(g) for g in groups))
        if len(samples) < 8:  # completions to cross-score against TRL's decoding
            for problem, start_row in zip(problems, range(0, len(rollouts), group_size),
                                          strict=True):
                r = rollouts[start_row]
                samples.append({"tokens": r.token_ids[r.prompt_length:],
                                "reference": problem["reference"], "reward": r.reward})
        return rollouts

    module.rollouts = timed_rollouts

    class Timing(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            timer.start()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            timer.stop(step_tokens[0])

    trainer = L.Trainer(accelerator="cpu", precision="32-true", max_steps=args.steps,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[Timing()])
    trainer.fit(module, datamodule=data_module(args.model, path, args.prompts))
    result = timer.summary(per_step, "samples")
    timed = len(timer.wall)
    result.update(
        optimizer_steps=trainer.global_step, rollout_s=statistics.median(rollout_s[-timed:]),
        completions_per_step=sorted(set(completions)),
        mean_completion_tokens=statistics.mean(lengths[-timed:]),
        skipped_groups=sum(skipped[-timed:]), groups=timed * args.prompts,
        geometry={"data.batch_size": args.prompts, "num_generations": args.generations,
                  "rl_chunk_size": module.hparams.rl_chunk_size,
                  "rl_mini_batch_size": module.hparams.rl_mini_batch_size})
    result["_samples"] = samples
    return result


# -- TRL ------------------------------------------------------------------------------------------
def run_trl(args, setting: str, rows: list[dict], ours_prompt_ids: list[list[int]], out_dir: str,
            gradient_checkpointing: bool | None) -> dict:
    import datasets
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from autotrain_pl.models import load_model
    from autotrain_pl.models.export import stop_token_ids

    timer = StepTimer(args.warmup)
    per_step = args.prompts * args.generations
    tokenizer, renderer = trl_tokenizer(args.model)
    torch.manual_seed(0)
    model = load_model(args.model)
    model.generation_config.eos_token_id = stop_token_ids(tokenizer, renderer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        config = GRPOConfig(
            output_dir=out_dir, per_device_train_batch_size=per_step,
            gradient_accumulation_steps=1, steps_per_generation=1,
            num_generations=args.generations, max_completion_length=args.max_new_tokens,
            temperature=1.0, top_p=1.0, top_k=0, loss_type="dapo", beta=0.0, epsilon=0.2,
            scale_rewards="group", num_iterations=1, learning_rate=args.lr,
            lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
            optim="adamw_torch_fused", max_steps=args.steps, report_to="none",
            logging_steps=10**6, save_strategy="no", bf16=False, fp16=False,
            use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0, disable_tqdm=True,
            seed=0,
            # None keeps TRL's default (on in TRL 1.x: a second forward in the backward).
            **({} if gradient_checkpointing is None
               else {"gradient_checkpointing": gradient_checkpointing}))
    trainer = GRPOTrainer(model=model, reward_funcs=trl_reward(setting), args=config,
                          train_dataset=datasets.Dataset.from_list(trl_rows(rows)),
                          processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)
    time_trl_steps(trainer, timer, lambda inputs: 0)  # tokens filled in from the rollouts below

    gen_tokens, rollout_s, completions, lengths, prompt_ids_seen, samples = [], [], [], [], {}, []
    original_generate = trainer._generate_and_score_completions
    original_rewards = trainer._calculate_rewards

    def timed_generate(inputs):
        start = time.perf_counter()
        output = original_generate(inputs)
        rollout_s.append(time.perf_counter() - start)
        completion_mask = output["completion_mask"]
        gen_tokens.append(int(output["prompt_mask"].sum() + completion_mask.sum()))
        completions.append(int(completion_mask.shape[0]))
        lengths.append(float(completion_mask.sum(dim=1).float().mean()))
        for x, ids, mask in zip(inputs, output["prompt_ids"], output["prompt_mask"], strict=True):
            prompt_ids_seen[x["prompt"][-1]["content"]] = ids[mask.bool()].tolist()
        return output

    def recorded_rewards(inputs, prompts, completions_, completion_ids_list):
        rewards = original_rewards(inputs, prompts, completions_, completion_ids_list)
        if len(samples) < 8:
            for row in range(0, len(inputs), args.generations):
                samples.append({"tokens": list(completion_ids_list[row]),
                                "reference": inputs[row]["reference"],
                                "reward": float(rewards[row, 0])})
        return rewards

    trainer._generate_and_score_completions = timed_generate
    trainer._calculate_rewards = recorded_rewards
    trainer.train()
    timed = len(timer.wall)
    timer.tokens = gen_tokens[-timed:]
    result = timer.summary(per_step, "samples")
    ours_by_question = {r["messages"][0]["content"]: ids for r, ids in zip(rows, ours_prompt_ids,
                                                                            strict=True)}
    a = trainer.args
    result.update(
        optimizer_steps=trainer.state.global_step, rollout_s=statistics.median(rollout_s[-timed:]),
        completions_per_step=sorted(set(completions)),
        generation_rounds=len(rollout_s),
        mean_completion_tokens=statistics.mean(lengths[-timed:]),
        prompt_ids_identical=all(ours_by_question[q] == ids for q, ids in prompt_ids_seen.items()),
        gradient_checkpointing=bool(a.gradient_checkpointing),
        geometry={"per_device_train_batch_size": a.per_device_train_batch_size,
                  "gradient_accumulation_steps": a.gradient_accumulation_steps,
                  "steps_per_generation": a.steps_per_generation,
                  "generation_batch_size": a.generation_batch_size,
                  "num_generations": a.num_generations,
                  "max_grad_norm": a.max_grad_norm, "optim": str(a.optim),
                  "eos_token_ids": list(trainer.eos_token_ids)})
    result["_samples"] = samples
    return result


# -- reward agreement -------------------------------------------------------------------------------
def reward_check(model_ref: str, rows: list[dict], samples: list[dict]) -> dict:
    """Score completions the way each side does and compare.

    Ours: the ``arithmetic`` environment's step on ``renderer.parse_response(tokens)``, with the
    registered bench rewards and with our built-in ``correctness``. TRL: its decoding of a
    conversational completion (``batch_decode(skip_special_tokens=True)``) into the same plain
    function. Probes: each question's right answer, a wrong one, the right one padded with
    spaces, each followed by the end of turn, plus completions both sides actually sampled.
    """
    from autotrain_pl.rl import CombinedReward
    from autotrain_pl.rl.envs import ENVIRONMENTS
    from autotrain_pl.rl.types import Action

    tokenizer, renderer = trl_tokenizer(model_ref)
    end = renderer.stop_token_ids()

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False) + list(end)

    probes = []
    for row in rows[:4]:
        ref = row["reference"]
        for text in (ref, str(int(ref) + 1), f" {ref} "):
            probes.append({"tokens": encode(text), "reference": ref, "source": "probe"})
    probes += [dict(s, source="sampled") for s in samples]

    def ours_score(spec: str, tokens: list[int], reference: str) -> float:
        group = ENVIRONMENTS.get("arithmetic")({"prompt_ids": [], "reference": reference},
                                               CombinedReward(spec))
        env = group.make_envs(1)[0]
        message = renderer.parse_response(tokens)
        return env.step(Action(tokens, message.content, message, "eos")).reward

    agree = {"exact": 0, "dense": 0, "correctness": 0, "recorded": 0}
    recorded, mismatches, correct = 0, [], 0
    for probe in probes:
        tokens, ref = probe["tokens"], probe["reference"]
        trl_text = tokenizer.batch_decode([tokens], skip_special_tokens=True)[0]
        trl_scores = {s: REWARDS[s](trl_text, ref) for s in REWARDS}
        ours_scores = {s: ours_score(f"bench_{s}", tokens, ref) for s in REWARDS}
        ours_scores["correctness"] = ours_score("correctness", tokens, ref)
        trl_scores["correctness"] = trl_scores["exact"]
        correct += trl_scores["exact"] == 1.0
        for key in ("exact", "dense", "correctness"):
            same = abs(ours_scores[key] - trl_scores[key]) < 1e-9
            agree[key] += same
            if not same and len(mismatches) < 5:
                mismatches.append({"reward": key, "ours": ours_scores[key],
                                   "trl": trl_scores[key], "trl_text": trl_text,
                                   "ours_text": renderer.parse_response(tokens).content})
        if "reward" in probe:  # what the run itself gave, under its setting's reward
            recorded += 1
            setting = probe.get("setting", "exact")
            agree["recorded"] += abs(probe["reward"] - trl_scores[setting]) < 1e-6
    return {"probes": len(probes), "correct_probes": correct,
            "agree": agree, "recorded_checked": recorded, "mismatches": mismatches,
            "all_agree": all(v == len(probes) for k, v in agree.items() if k != "recorded")
            and agree["recorded"] == recorded}


# -- main -----------------------------------------------------------------------------------------
def quiet() -> None:
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "autotrain_pl", "trl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*gradient_checkpointing.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="trl")
    warnings.filterwarnings("ignore", category=FutureWarning)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run of ~2-3 minutes")
    parser.add_argument("--model", default="builtin:small")
    parser.add_argument("--prompts", type=int, default=None,
                        help="prompts per optimizer step (default 16 as configs/grpo.yaml; 4 quick)")
    parser.add_argument("--generations", type=int, default=8, help="G, samples per prompt")
    parser.add_argument("--max_new_tokens", type=int, default=8, help="as configs/grpo.yaml")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimizer steps per run, warm-up included (default 6; 3 quick)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first steps")
    parser.add_argument("--rounds", type=int, default=None, help="default 3; 2 with --quick")
    parser.add_argument("--rewards", default=None,
                        help="comma-separated settings: exact, dense (default both)")
    parser.add_argument("--sides", default="ours,trl,trl_nogc",
                        help="comma-separated: ours, trl (TRL defaults), trl_nogc")
    parser.add_argument("--lr", type=float, default=1e-6, help="TRL's GRPO default")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's, i.e. the core count)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    args.prompts = args.prompts or (4 if args.quick else 16)
    args.steps = args.steps or (3 if args.quick else 6)
    rounds = args.rounds or (2 if args.quick else 3)
    settings = [s.strip() for s in (args.rewards or ",".join(SETTINGS)).split(",") if s.strip()]
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if set(settings) - set(SETTINGS) or set(sides) - set(SIDES):
        parser.error(f"--rewards from {SETTINGS}, --sides from {SIDES}")
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")
    quiet()
    register_rewards()

    import transformers
    import trl

    from autotrain_pl.data import synthetic_rows
    from autotrain_pl.models import load_model

    per_step = args.prompts * args.generations
    n_rows = args.steps * args.prompts  # one epoch: every step a fresh batch of P questions
    path = data_path(n_rows)
    rows = synthetic_rows(path)
    from autotrain_pl.objectives.rl.data import RLEncoding

    ours_data = data_module(args.model, path, args.prompts)
    ours_data.use_encoding(RLEncoding())  # what GRPOModule asks for: prompts with references
    ours_data.setup("fit")
    ours_prompt_ids = [list(x["input_ids"]) for x in ours_data.train_dataset]
    if len(ours_prompt_ids) != n_rows:
        raise RuntimeError(f"our data module kept {len(ours_prompt_ids)} of {n_rows} questions")
    # The data module's row order is the source's: check it lines up with ``rows``.
    tokenizer, renderer = trl_tokenizer(args.model)
    from autotrain_pl.rendering import Message

    expected = [renderer.build_generation_prompt([Message(role="user",
                                                          content=r["messages"][0]["content"])])
                for r in rows]
    if expected != ours_prompt_ids:
        raise RuntimeError("our data module's prompts are not the rows' in order")
    params = sum(p.numel() for p in load_model(args.model).parameters())
    work = Path(tempfile.mkdtemp(prefix="grpo_bench_"))

    def make(side: str, setting: str):
        if side == "ours":
            return lambda: run_ours(args, setting, path)
        return lambda: run_trl(args, setting, rows, ours_prompt_ids, str(work / "trl"),
                               None if side == "trl" else False)

    runners = {f"{side}_{setting}": make(side, setting) for setting in settings for side in sides}
    load = os.getloadavg()[0]
    print(f"model {args.model} ({params / 1e6:.1f}M params), {args.prompts} prompts x G="
          f"{args.generations} = {per_step} completions/step, max_new_tokens "
          f"{args.max_new_tokens}, {args.steps} steps ({args.warmup} warm-up), {rounds} round(s), "
          f"{threads} threads, load average {load:.1f} on {os.cpu_count()} cores, "
          f"trl {trl.__version__}", flush=True)
    if load > (os.cpu_count() or 1) - 0.5:
        print("warning: the machine is busy; wall times are noisy (cpu-time ratios with "
              "--threads 1 are steadier)", flush=True)

    all_rounds: dict[str, list[dict]] = {name: [] for name in runners}
    names = list(runners)
    samples: list[dict] = []
    started = time.perf_counter()
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            torch.set_num_threads(threads)
            result = runners[name]()
            setting = name.rsplit("_", 1)[1]
            samples += [dict(s, setting=setting) for s in result.pop("_samples")]
            all_rounds[name].append(result)
            gc.collect()  # trainers and modules hold reference cycles; free them between runs
            print(f"  round {round_index + 1} {name}: {result['samples_per_s']:.1f} samples/s "
                  f"(median step {result['median_step_s'] * 1000:.0f} ms, rollout "
                  f"{result['rollout_s'] * 1000:.0f} ms, {result['mean_completion_tokens']:.1f} "
                  f"completion tokens)", flush=True)
    results = {}
    for name, runs in all_rounds.items():
        best = dict(max(runs, key=lambda r: r["samples_per_s"]))
        best["samples_per_s_all_rounds"] = [r["samples_per_s"] for r in runs]
        best["cpu_samples_per_s"] = max(r["cpu_samples_per_s"] for r in runs)
        results[name] = best
    ratios, cpu_ratios = {}, {}
    for setting in settings:
        suffix = "" if setting == "exact" else f"_{setting}"
        ours = results.get(f"ours_{setting}")
        for peer in PEERS:
            other = results.get(f"{peer}_{setting}")
            if ours and other:
                key = f"ours_vs_{peer}{suffix}"
                ratios[key] = ours["samples_per_s"] / other["samples_per_s"]
                cpu_ratios[key] = ours["cpu_samples_per_s"] / other["cpu_samples_per_s"]
    check = reward_check(args.model, rows, samples)
    geometry_ok = all(r["completions_per_step"] == [per_step] for r in results.values()) and all(
        r.get("generation_rounds", r["optimizer_steps"]) == r["optimizer_steps"] == args.steps
        for r in results.values())
    report = {
        "model": args.model, "params": params, "data": path, "chat_format": CHAT_FORMAT,
        "prompts_per_step": args.prompts, "num_generations": args.generations,
        "completions_per_step": per_step, "max_new_tokens": args.max_new_tokens,
        "temperature": 1.0, "loss_type": "dapo", "beta": 0.0, "learning_rate": args.lr,
        "optimizer": "fused AdamW, weight decay 0, constant lr",
        "steps": args.steps, "warmup_steps": args.warmup, "rounds": rounds, "quick": args.quick,
        "command": " ".join(sys.argv[1:]), "settings": settings,
        "device": "cuda" if torch.cuda.is_available() else "cpu", "precision": "32-true",
        "torch_threads": threads, "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(), "load_average_before": load,
        "torch": torch.__version__, "trl": trl.__version__, "transformers": transformers.__version__,
        "wall_seconds": time.perf_counter() - started, "geometry_matched": geometry_ok,
        "reward_check": check, "results": results, "ratios": ratios, "cpu_time_ratios": cpu_ratios,
        "note": "shared 2-core machine: wall-clock figures are noisy; compare ratios from one run",
    }

    print(f"\n{'run':<16}{'samples/s':>10}{'cpu s/s':>9}{'tokens/s':>10}{'step ms':>9}"
          f"{'rollout ms':>11}{'compl tok':>10}{'skipped':>9}")
    for name, r in results.items():
        skipped = f"{r['skipped_groups']}/{r['groups']}" if "skipped_groups" in r else "-"
        print(f"{name:<16}{r['samples_per_s']:>10.2f}{r['cpu_samples_per_s']:>9.2f}"
              f"{r['tokens_per_s']:>10.0f}{r['median_step_s'] * 1000:>9.0f}"
              f"{r['rollout_s'] * 1000:>11.0f}{r['mean_completion_tokens']:>10.1f}{skipped:>9}")
    print("ratios (wall):", {k: round(v, 2) for k, v in ratios.items()})
    print("ratios (cpu): ", {k: round(v, 2) for k, v in cpu_ratios.items()})
    print(f"geometry matched: {geometry_ok}; TRL prompt ids identical to ours: "
          f"{all(r.get('prompt_ids_identical', True) for r in results.values())}; rewards agree: "
          f"{check['all_agree']} ({check['probes']} completions, {check['correct_probes']} "
          f"correct, {check['recorded_checked']} re-scored from the runs)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output} ({report['wall_seconds']:.0f} s of runs)")


if __name__ == "__main__":
    main()
