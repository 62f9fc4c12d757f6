"""PPO throughput: our PPOModule vs a hand-written PPO loop of the same algorithm, in one process run.

TRL 1.16 ships no PPO trainer, so the peer is the plain loop a researcher would write (the shape
of TRL 0.x's ``PPOTrainer``): ``model.generate`` on left-padded prompts, then full-logits forwards
of the policy (with ``output_hidden_states`` for the value head) and of a frozen reference, the
KL-penalized per-token reward, TRL's GAE loop over every completion position, masked whitening,
and ``--epochs`` passes over shuffled mini-batches with the clipped policy and value losses,
gradient clipping at norm 1.0 and fused AdamW. Both sides run:

- the same model (``--model``, ``builtin:small`` by default: a seeded ~30M-parameter Llama, fp32,
  CPU) with a zero-initialised ``Linear(hidden, 1)`` value head on its last hidden state, and a
  frozen copy of it as the KL reference (``rl_kl_coef`` 0.1, k1 estimator);
- the same prompts: ``synthetic:arithmetic?n=<steps x prompts>&seed=0`` rendered with ChatML
  (ours through ``ChatDataModule``; the loop renders the same rows with the same renderer; the
  script checks that both sides sampled from the same prompt ids), one completion per prompt,
  temperature 1.0, ``--max_new_tokens``, stopping at the chat format's end of turn;
- the same reward (``correctness``, on ``renderer.parse_response`` of the sampled tokens), gamma
  0.99, lambda 0.95, clip ranges 0.2, value coefficient 1.0, ``--epochs``, ``--mini_batch``
  rollouts per optimizer step, constant learning rate ``--lr``.

Timing (``step_timing.StepTimer``): wall and process-CPU time of each PPO iteration (rollouts,
scoring, the no-grad passes and every optimizer step of the epochs), ours from Lightning's
``on_train_batch_start`` to ``on_train_batch_end``. The first ``--warmup`` iterations are not
timed; a run's figure is its median iteration. Runners alternate for ``--rounds`` rounds and each
keeps its best. ``samples_per_s`` counts rollouts per second of whole iterations; ``rollout_s``
and ``update_s`` split the median iteration. ``ratios.ours_vs_hand_loop`` is ours / the loop's
samples per second (higher is better); ``cpu_time_ratios`` the same from CPU time.

    python benchmarks/ppo_throughput.py --quick   # < 2 minutes on 2 CPU cores, 1 thread
    python benchmarks/ppo_throughput.py

``--quick`` runs one intra-op thread: on the shared 2-core machine, two threads waiting on each
other (OpenMP) made a quick run take 3.5 minutes and slowed the first runner 2-3x, swamping
what is compared. Pass ``--threads 2`` on an idle machine.

Writes ``benchmarks/results/ppo_throughput.json``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
from step_timing import StepTimer  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "ppo_throughput.json"
CHAT_FORMAT = "chatml"
RUNNERS = ("ours", "hand_loop")
KL_COEF, GAMMA, LAM, CLIP, CLIP_VALUE, VALUE_COEF, MAX_GRAD_NORM = 0.1, 0.99, 0.95, 0.2, 0.2, 1.0, 1.0


def data_path(args) -> str:
    return f"synthetic:arithmetic?n={args.steps * args.prompts}&seed=0"


# -- ours -----------------------------------------------------------------------------------------
def run_ours(args) -> dict:
    import lightning as L

    from autotrain_pl.data import ChatDataModule
    from autotrain_pl.objectives import PPOModule

    timer, phases, prompts_seen, lengths = StepTimer(args.warmup), [], [], []
    timer_tokens = [0]
    torch.manual_seed(0)
    module = PPOModule(
        args.model, max_new_tokens=args.max_new_tokens, temperature=1.0, value_model="shared",
        rl_env_type="arithmetic", rl_reward_fn="correctness", rl_gamma=GAMMA, rl_gae_lambda=LAM,
        rl_kl_coef=KL_COEF, rl_clip_range=CLIP, rl_clip_range_value=CLIP_VALUE,
        rl_value_loss_coef=VALUE_COEF, rl_num_ppo_epochs=args.epochs,
        rl_mini_batch_size=args.mini_batch, rl_chunk_size=args.prompts,
        max_grad_norm=MAX_GRAD_NORM, learning_rate=args.lr, lr_scheduler="constant",
        export=False)
    original = module.rollouts

    def timed_rollouts(problems, group_size, greedy=False):
        start = time.perf_counter()
        rollouts = original(problems, group_size, greedy)
        phases.append({"start": start, "rollout_s": time.perf_counter() - start})
        prompts_seen.extend(r.token_ids[:r.prompt_length] for r in rollouts)
        lengths.append(statistics.mean(r.completion_length for r in rollouts))
        timer_tokens[0] = sum(len(r.token_ids) for r in rollouts)
        return rollouts

    module.rollouts = timed_rollouts

    class Timing(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            timer.start()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            timer.stop(timer_tokens[0])
            phases[-1]["update_s"] = time.perf_counter() - phases[-1]["start"] - phases[-1][
                "rollout_s"]

    updates = args.epochs * -(-args.prompts // args.mini_batch)
    trainer = L.Trainer(accelerator="cpu", precision="32-true", max_steps=args.steps * updates,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[Timing()])
    data = ChatDataModule(data_path(args), tokenizer=args.model, chat_format=CHAT_FORMAT,
                          batch_size=args.prompts, max_length=64, seed=0)
    trainer.fit(module, datamodule=data)
    return summary(timer, args, phases, lengths, prompts_seen, trainer.global_step)


# -- the hand-written loop ------------------------------------------------------------------------
def forward(model, head, sequences, attention, positions, start: int):
    """Full-logits forward: log-probs of the completion tokens and (with ``head``) values at the
    positions that predict them."""
    out = model(input_ids=sequences, attention_mask=attention, position_ids=positions,
                output_hidden_states=head is not None, use_cache=False)
    logits = out.logits[:, start - 1:-1]
    logprobs = logits.log_softmax(-1).gather(-1, sequences[:, start:, None]).squeeze(-1)
    values = None if head is None else head(out.hidden_states[-1][:, start - 1:-1]).squeeze(-1)
    return logprobs, values, logits


def masked_whiten(values, mask):
    mean = (values * mask).sum() / mask.sum()
    variance = ((values - mean) ** 2 * mask).sum() / (mask.sum() - 1)
    return (values - mean) * torch.rsqrt(variance + 1e-8) * mask


def run_hand_loop(args) -> dict:
    from autotrain_pl.data import synthetic_rows
    from autotrain_pl.models import fit_embeddings, load_model, load_tokenizer
    from autotrain_pl.models.export import stop_token_ids
    from autotrain_pl.rendering import Message, get_renderer
    from autotrain_pl.rl import REWARD_FUNCTIONS

    timer, phases, prompts_seen, lengths = StepTimer(args.warmup), [], [], []
    tokenizer = load_tokenizer(args.model)
    renderer = get_renderer(CHAT_FORMAT, tokenizer)
    correctness = REWARD_FUNCTIONS.get("correctness")
    problems = [(renderer.build_generation_prompt([Message("user", r["messages"][0]["content"])]),
                 r["reference"]) for r in synthetic_rows(data_path(args))]
    torch.manual_seed(0)
    model = load_model(args.model)
    fit_embeddings(model, tokenizer)
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    head = torch.nn.Linear(model.config.hidden_size, 1)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    params = [*model.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0, fused=True)
    stops = torch.tensor(stop_token_ids(tokenizer, renderer))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0].item()
    for step in range(args.steps):
        timer.start()
        start_time = time.perf_counter()
        batch = problems[step * args.prompts:(step + 1) * args.prompts]
        width = max(len(p) for p, _ in batch)
        prompt_ids = torch.tensor([[pad] * (width - len(p)) + p for p, _ in batch])
        prompt_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p, _ in batch])
        model.eval()
        with torch.no_grad():
            sequences = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask,
                                       do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                       max_new_tokens=args.max_new_tokens,
                                       eos_token_id=stops.tolist(), pad_token_id=pad)
        model.train()
        completions = sequences[:, width:]
        is_stop = torch.isin(completions, stops).long()
        mask = ((is_stop.cumsum(1) - is_stop) == 0).float()  # up to and including the stop
        scores = torch.tensor([correctness(renderer.parse_response(
            c[m.bool()].tolist()).content, ref) for c, m, (_, ref) in
            zip(completions, mask, batch, strict=True)])
        rollout_s = time.perf_counter() - start_time
        prompts_seen.extend(p for p, _ in batch)
        lengths.append(float(mask.sum(1).mean()))
        attention = torch.cat([prompt_mask, mask.long()], 1)
        positions = (attention.cumsum(1) - 1).clamp_min(0)
        with torch.no_grad():
            old_logprobs, old_values, _ = forward(model, head, sequences, attention, positions,
                                                  width)
            ref_logprobs, _, _ = forward(reference, None, sequences, attention, positions, width)
            old_values = old_values * mask
            rewards = -KL_COEF * (old_logprobs - ref_logprobs) * mask
            last = (mask.sum(1).long() - 1).clamp_min(0)
            rewards[torch.arange(len(batch)), last] += scores
            advantages, next_advantage = torch.zeros_like(rewards), 0.0
            for t in reversed(range(rewards.shape[1])):  # TRL 0.x's GAE loop
                next_value = old_values[:, t + 1] if t + 1 < rewards.shape[1] else 0.0
                delta = rewards[:, t] + GAMMA * next_value - old_values[:, t]
                next_advantage = delta + GAMMA * LAM * next_advantage
                advantages[:, t] = next_advantage
            returns = advantages + old_values
            advantages = masked_whiten(advantages, mask)
        for _ in range(args.epochs):
            order = torch.randperm(len(batch))
            for rows in order.split(args.mini_batch):
                logprobs, values, logits = forward(model, head, sequences[rows],
                                                   attention[rows], positions[rows], width)
                weights = mask[rows]
                ratio = torch.exp(logprobs - old_logprobs[rows])
                adv = advantages[rows]
                policy = -torch.min(ratio * adv, ratio.clamp(1 - CLIP, 1 + CLIP) * adv)
                moved = old_values[rows] + (values - old_values[rows]).clamp(-CLIP_VALUE,
                                                                               CLIP_VALUE)
                value = 0.5 * torch.max((values - returns[rows]) ** 2,
                                        (moved - returns[rows]) ** 2)
                loss = ((policy + VALUE_COEF * value) * weights).sum() / weights.sum()
                with torch.no_grad():  # logged, as every PPO trainer does
                    probs = logits.softmax(-1)
                    _entropy = (-(probs * logits.log_softmax(-1)).sum(-1) * weights).sum()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        timer.stop(int(attention.sum()))
        phases.append({"rollout_s": rollout_s,
                       "update_s": time.perf_counter() - start_time - rollout_s})
    return summary(timer, args, phases, lengths, prompts_seen,
                   args.steps * args.epochs * -(-args.prompts // args.mini_batch))


# -- report -----------------------------------------------------------------------------------------
def summary(timer: StepTimer, args, phases: list[dict], lengths: list[float],
            prompts_seen: list[list[int]], optimizer_steps: int) -> dict:
    timed = len(timer.wall)
    result = timer.summary(args.prompts, "samples")
    result.update(rollout_s=statistics.median(p["rollout_s"] for p in phases[-timed:]),
                  update_s=statistics.median(p["update_s"] for p in phases[-timed:]),
                  mean_completion_tokens=statistics.mean(lengths[-timed:]),
                  optimizer_steps=optimizer_steps,
                  _prompts=sorted(map(tuple, prompts_seen)))
    return result


def quiet() -> None:
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "autotrain_pl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run of under two minutes")
    parser.add_argument("--model", default="builtin:small")
    parser.add_argument("--prompts", type=int, default=None,
                        help="rollouts per PPO iteration (default 32 as configs/ppo.yaml; 8 quick)")
    parser.add_argument("--mini_batch", type=int, default=None,
                        help="rollouts per optimizer step (default 16; 4 quick)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--max_new_tokens", type=int, default=8, help="as configs/ppo.yaml")
    parser.add_argument("--steps", type=int, default=None,
                        help="PPO iterations per run, warm-up included (default 5; 3 quick)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first iterations")
    parser.add_argument("--rounds", type=int, default=None, help="default 2; 1 with --quick")
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's; 1 with --quick)")
    args = parser.parse_args()
    threads = args.threads or (1 if args.quick else torch.get_num_threads())
    args.prompts = args.prompts or (8 if args.quick else 32)
    args.mini_batch = args.mini_batch or (4 if args.quick else 16)
    args.steps = args.steps or (3 if args.quick else 5)
    rounds = args.rounds or (1 if args.quick else 2)
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")
    quiet()
    runners = {"ours": run_ours, "hand_loop": run_hand_loop}
    load = os.getloadavg()[0]
    print(f"{args.model}, {args.prompts} rollouts/iteration, {args.epochs} epochs x "
          f"{-(-args.prompts // args.mini_batch)} mini-batches, max_new_tokens "
          f"{args.max_new_tokens}, {args.steps} iterations ({args.warmup} warm-up), {rounds} "
          f"round(s), {threads} threads, load average {load:.1f}", flush=True)
    runs: dict[str, list[dict]] = {name: [] for name in RUNNERS}
    prompts: dict[str, list] = {}
    started = time.perf_counter()
    for index in range(rounds):
        for name in RUNNERS[index % 2:] + RUNNERS[:index % 2]:
            torch.set_num_threads(threads)
            result = runners[name](args)
            prompts[name] = result.pop("_prompts")
            runs[name].append(result)
            gc.collect()
            print(f"  round {index + 1} {name}: {result['samples_per_s']:.2f} samples/s "
                  f"(rollout {result['rollout_s']:.2f} s, update {result['update_s']:.2f} s)",
                  flush=True)
    results = {}
    for name, rounds_ in runs.items():
        best = dict(max(rounds_, key=lambda r: r["samples_per_s"]))
        best["samples_per_s_all_rounds"] = [r["samples_per_s"] for r in rounds_]
        best["cpu_samples_per_s"] = max(r["cpu_samples_per_s"] for r in rounds_)
        results[name] = best
    ours, hand = results["ours"], results["hand_loop"]
    report = {
        "model": args.model, "data": data_path(args), "chat_format": CHAT_FORMAT,
        "rollouts_per_iteration": args.prompts, "mini_batch": args.mini_batch,
        "epochs": args.epochs, "max_new_tokens": args.max_new_tokens, "steps": args.steps,
        "warmup": args.warmup, "rounds": rounds, "quick": args.quick, "learning_rate": args.lr,
        "command": " ".join(sys.argv[1:]), "device": "cpu", "precision": "32-true",
        "threads": threads, "cpu_count": os.cpu_count(), "load_average_before": load,
        "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
        "same_prompts": prompts["ours"] == prompts["hand_loop"],
        "wall_seconds": time.perf_counter() - started, "results": results,
        "ratios": {"ours_vs_hand_loop": ours["samples_per_s"] / hand["samples_per_s"]},
        "cpu_time_ratios": {"ours_vs_hand_loop": ours["cpu_samples_per_s"]
                            / hand["cpu_samples_per_s"]},
        "note": "shared 2-core machine: wall-clock figures are noisy; compare ratios from one run",
    }
    print(f"\n{'run':<11}{'samples/s':>10}{'cpu s/s':>9}{'tokens/s':>10}{'rollout s':>10}"
          f"{'update s':>9}{'compl tok':>10}")
    for name, r in results.items():
        print(f"{name:<11}{r['samples_per_s']:>10.2f}{r['cpu_samples_per_s']:>9.2f}"
              f"{r['tokens_per_s']:>10.0f}{r['rollout_s']:>10.2f}{r['update_s']:>9.2f}"
              f"{r['mean_completion_tokens']:>10.1f}")
    print("ratios (wall):", {k: round(v, 2) for k, v in report["ratios"].items()})
    print("ratios (cpu): ", {k: round(v, 2) for k, v in report["cpu_time_ratios"].items()})
    print(f"same prompts on both sides: {report['same_prompts']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS} ({report['wall_seconds']:.0f} s of runs)")


if __name__ == "__main__":
    main()
