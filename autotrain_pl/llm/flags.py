"""Every flag of the "aitraining" guide's ``aitraining llm``, and what it becomes here.

A row gives the guide's name and default, then one of: our config key (``key``), a group
translation in ``translate.py`` (``maps_to`` says what), values accepted because they describe
what we do anyway (``noop``), or a refusal with its reason (``refused``). ``ours=True`` marks
the few flags this command adds (``--max-steps``, ``--print-config``, ...).

Defaults are the guide's where it states them (the SFT guide's core table, the integration
guide's distillation, sweep, evaluation and PPO lists); where it states none, ours apply.
"""

from __future__ import annotations

from autotrain_pl.llm import values
from autotrain_pl.llm.spec import (
    MANUAL_OPTIMIZATION,
    PAIR_TRAINERS,
    SFT_TRAINERS,
    TRAINERS,
    Flag,
)

ALL_AUTOMATIC = frozenset(TRAINERS) - MANUAL_OPTIMIZATION
RL = frozenset({"ppo", "grpo"})
PPO = frozenset({"ppo"})
DPO = frozenset({"dpo", "orpo"})
M = "model.init_args."
D = "data.init_args."
RL_KEYS = {"ppo": M, "grpo": M}


def _rl(name: str) -> dict[str, str]:
    """The same init argument of PPOModule and GRPOModule."""
    return {trainer: f"{prefix}{name}" for trainer, prefix in RL_KEYS.items()}


def _distill(name: str) -> dict[str, str]:
    """SFT keeps distillation options in ``distillation``; DistillationModule takes them as its
    own arguments."""
    return {"sft": f"{M}distillation.{name}", "default": f"{M}distillation.{name}",
            "distillation": f"{M}{name}"}


SAMPLING_REFUSED = ("sampling from fixed prompts during training is not supported; generation "
                    "metrics on the validation rows come from --use-enhanced-eval, and aitrain "
                    "generate samples an export")

FLAGS: tuple[Flag, ...] = (
    # -- core -------------------------------------------------------------------------------
    Flag("model", "str", "Core", key=f"{M}model_name_or_path", example="builtin:tiny"),
    Flag("data-path", "str", "Core", example="data",
         maps_to=f"{D}data_path (a folder: its train/valid files, see --train-split)"),
    Flag("project-name", "str", "Core", example="my-model",
         maps_to="trainer.default_root_dir (the export lands in <project-name>/export; "
                 "--inference-mode writes its results there)"),
    Flag("trainer", "str", "Core", default="sft", choices=TRAINERS, example="sft",
         maps_to="model.class_path: sft/default SFTModule, distillation DistillationModule, "
                 "dpo DPOModule, orpo DPOModule with loss_type orpo, reward RewardModule, ppo "
                 "PPOModule, grpo GRPOModule"),
    Flag("train", "bool", "Core", noop=(True,), example=True,
         refused="aitrain llm always trains; --inference-mode generates instead",
         maps_to="no effect: training is what aitrain llm does"),
    # -- data ---------------------------------------------------------------------------------
    Flag("add-eos-token", "bool", "Data", default=True, noop=(True,), example=True,
         refused="the end-of-turn/EOS token of a trained reply always carries loss (a model "
                 "that never learns to stop is the most common fine-tuning bug)",
         maps_to="always on"),
    Flag("max-samples", "int", "Data", key=f"{D}max_samples", example=100),
    Flag("prompt-text-column", "str", "Data", example="question",
         maps_to=f"{D}column_mapping (the column becomes prompt)"),
    Flag("rejected-text-column", "str", "Data", trainers=PAIR_TRAINERS, example="worse",
         maps_to=f"{D}column_mapping (the column becomes rejected)"),
    Flag("text-column", "str", "Data", default="text", example="content",
         maps_to=f"{D}column_mapping (text; completion with --prompt-text-column; chosen for "
                 "pairs); text, messages, conversations need none"),
    Flag("train-split", "str", "Data", default="train", example="train",
         maps_to=f"{D}split"),
    Flag("valid-split", "str", "Data", example="validation",
         maps_to=f"{D}valid_split (found by itself when the folder has a valid/validation "
                 "file)"),
    Flag("max-seq-length", "int", "Data", default=2048, key=f"{D}max_length", example=512),
    Flag("block-size", "int", "Data", example=512,
         maps_to=f"{D}max_length (-1: unset; two length flags that differ are an error)"),
    Flag("model-max-length", "int", "Data", example=2048,
         maps_to=f"{D}max_length (two length flags that differ are an error)"),
    Flag("padding", "str", "Data", default="right", choices=("left", "right"), noop=("right",),
         example="right", refused="training batches are padded on the right and generation "
                                  "prompts on the left, each where it must be",
         maps_to="right: what we do"),
    Flag("auto-convert-dataset", "bool", "Data", noop=(True,), example=True,
         refused="row formats (alpaca, sharegpt, messages, prompt/completion, text, pairs) are "
                 "always detected; to force one use aitrain fit with data.init_args.row_format",
         maps_to="always on"),
    Flag("use-sharegpt-mapping", "bool", "Data", noop=(True, False), example=True,
         maps_to="no effect: sharegpt rows (from/value) are read as they are"),
    Flag("conversation-extension", "int", "Data", default=1, noop=(1,), example=3,
         refused="merging single-turn rows into multi-turn chats is not supported; write "
                 "multi-turn rows"),
    Flag("apply-chat-template", "bool", "Data", noop=(True,), example=True,
         refused="chat rows are always rendered in the chat format (text rows train as plain "
                 "text)", maps_to="always on"),
    Flag("chat-template", "str", "Message rendering", example="chatml", convert=values.chat_format,
         maps_to=f"{D}chat_format (tokenizer: native; none: auto)"),
    Flag("chat-format", "str", "Message rendering", example="chatml", convert=values.chat_format,
         maps_to=f"{D}chat_format (over --chat-template, as in the guide)"),
    Flag("token-weights", "json", "Message rendering", key=f"{D}token_weights",
         example={"system": 0.0, "user": 0.0, "assistant": 1.0}),
    Flag("packing", "bool", "Data", key=f"{D}packing", example=True),
    Flag("max-prompt-length", "int", "Data", example=128,
         refused="prompt and reply share --max-seq-length (data.init_args.max_length); longer "
                 "rows are cut"),
    Flag("max-completion-length", "int", "Data", trainers=RL, key=_rl("max_new_tokens"),
         example=16),
    # -- training ----------------------------------------------------------------------------
    Flag("auto-find-batch-size", "bool", "Training", noop=(False,), example=False,
         refused="set --batch-size; a smaller batch with --gradient-accumulation keeps the "
                 "optimizer step the same"),
    Flag("batch-size", "int", "Training", default=8, key=f"{D}batch_size", example=4),
    Flag("disable-gradient-checkpointing", "bool", "Training", default=False,
         key=f"{M}gradient_checkpointing", convert=lambda value: not value, example=True),
    Flag("gradient-checkpointing", "bool", "Training", key=f"{M}gradient_checkpointing",
         example=True, ours=True),
    Flag("distributed-backend", "str", "Training", key="trainer.strategy",
         convert=values.strategy, example="ddp"),
    Flag("epochs", "int", "Training", default=3, key="trainer.max_epochs", example=1),
    Flag("gradient-accumulation", "int", "Training", default=4, trainers=ALL_AUTOMATIC,
         example=2, maps_to="trainer.accumulate_grad_batches (StepControlCallback with "
                            "--use-forward-backward)"),
    Flag("gradient-accumulation-steps", "int", "Training", trainers=ALL_AUTOMATIC, example=2,
         maps_to="trainer.accumulate_grad_batches (StepControlCallback with "
                 "--use-forward-backward)"),
    Flag("log", "str", "Training", choices=("wandb", "tensorboard", "mlflow", "csv", "none"),
         example="tensorboard",
         maps_to="trainer.logger (none/csv: our CSV logger in the run folder)"),
    Flag("logging-steps", "int", "Training", example=10,
         maps_to="trainer.log_every_n_steps (-1: every step)"),
    Flag("lr", "float", "Training", default=5e-5, key=f"{M}learning_rate", example=1e-4),
    Flag("max-grad-norm", "float", "Training", default=1.0, example=1.0,
         maps_to="trainer.gradient_clip_val (ppo/grpo: model.init_args.max_grad_norm)"),
    Flag("mixed-precision", "str", "Training", key="trainer.precision",
         convert=values.precision, example="bf16"),
    Flag("optimizer", "str", "Training", default="adamw_torch", key=f"{M}optimizer",
         convert=values.optimizer, example="adamw_torch"),
    Flag("scheduler", "str", "Training", default="linear", key=f"{M}lr_scheduler",
         convert=values.scheduler, example="cosine"),
    Flag("seed", "int", "Training", default=42, example=0,
         maps_to="seed_everything and data.init_args.seed"),
    Flag("wandb-visualizer", "bool", "Training", noop=(False,), example=False,
         refused="the LEET live view is not started here; with --log wandb, open the run in "
                 "W&B (or tensorboard --logdir with --log tensorboard)"),
    Flag("warmup-ratio", "float", "Training", default=0.1, key=f"{M}warmup_ratio",
         example=0.05),
    Flag("weight-decay", "float", "Training", default=0.0, key=f"{M}weight_decay", example=0.01),
    Flag("max-steps", "int", "Training", key="trainer.max_steps", example=100, ours=True),
    # -- model ------------------------------------------------------------------------------
    Flag("attn-implementation", "str", "Model", key=f"{M}attn_implementation", example="sdpa"),
    Flag("use-flash-attention-2", "bool", "Model", key=f"{M}attn_implementation",
         convert=lambda on: "flash_attention_2" if on else None, example=True,
         maps_to=f"{M}attn_implementation: flash_attention_2"),
    Flag("unsloth", "bool", "Model", noop=(False,), example=False,
         refused="Unsloth's kernels are not used; our steps compute the LM head only at trained "
                 "positions instead (README benchmarks)"),
    # -- PEFT / LoRA ----------------------------------------------------------------------------
    Flag("peft", "bool", "PEFT/LoRA", default=False, example=True,
         maps_to=f"{M}lora (r, alpha, dropout, target_modules)"),
    Flag("lora-r", "int", "PEFT/LoRA", default=16, needs="peft", key=f"{M}lora.r", example=8),
    Flag("lora-alpha", "int", "PEFT/LoRA", default=32, needs="peft", key=f"{M}lora.alpha",
         example=16),
    Flag("lora-dropout", "float", "PEFT/LoRA", default=0.05, needs="peft",
         key=f"{M}lora.dropout", example=0.0),
    Flag("target-modules", "str", "PEFT/LoRA", default="all-linear", needs="peft",
         key=f"{M}lora.target_modules", convert=values.target_modules, example="q_proj,v_proj"),
    Flag("merge-adapter", "bool", "PEFT/LoRA", default=True, needs="peft",
         key=f"{M}export_mode", convert=lambda merge: "merged" if merge else "adapter",
         example=False, maps_to=f"{M}export_mode: merged (--no-merge-adapter: adapter)"),
    Flag("quantization", "str", "PEFT/LoRA", needs="peft", key=f"{M}quantization",
         convert=values.quantization, example="int8",
         maps_to=f"{M}quantization.bits: 4 (int4) or 8 (int8), bitsandbytes"),
    # -- DPO / ORPO -----------------------------------------------------------------------------
    Flag("dpo-beta", "float", "DPO/ORPO", default=0.1, trainers=DPO, key=f"{M}beta",
         example=0.2),
    Flag("model-ref", "str", "DPO/ORPO", trainers=frozenset({"dpo", "ppo", "grpo"}),
         key=f"{M}ref_model", example="builtin:tiny"),
    # -- PPO / RL -------------------------------------------------------------------------------
    Flag("rl-chunk-size", "int", "PPO/RL", trainers=RL, key=_rl("rl_chunk_size"), example=8),
    Flag("rl-clip-range", "float", "PPO/RL", default=0.2, trainers=RL,
         key={"ppo": f"{M}rl_clip_range", "grpo": f"{M}epsilon"}, example=0.2),
    Flag("rl-env-config", "json", "PPO/RL", trainers=RL, key=_rl("rl_env_options"),
         example={"max_turns": 1}),
    Flag("rl-env-type", "str", "PPO/RL", trainers=RL, example="text_generation",
         maps_to=f"{M}rl_env_type (text_generation: reward_model; multi_objective: qa with "
                 "--rl-reward-weights; ours: arithmetic, qa, guess_number, tool_use)"),
    Flag("rl-gae-lambda", "float", "PPO/RL", default=0.95, trainers=PPO,
         key=f"{M}rl_gae_lambda", example=0.95),
    Flag("rl-gamma", "float", "PPO/RL", default=0.99, trainers=PPO, key=f"{M}rl_gamma",
         example=0.99),
    Flag("rl-kl-coef", "float", "PPO/RL", default=0.1, trainers=RL,
         key={"ppo": f"{M}rl_kl_coef", "grpo": f"{M}beta"}, example=0.05),
    Flag("rl-mini-batch-size", "int", "PPO/RL", trainers=RL, key=_rl("rl_mini_batch_size"),
         example=4),
    Flag("rl-multi-objective", "bool", "PPO/RL", trainers=RL, example=True,
         maps_to=f"{M}rl_reward_fn as the --rl-reward-weights mix"),
    Flag("rl-num-ppo-epochs", "int", "PPO/RL", trainers=PPO, key=f"{M}rl_num_ppo_epochs",
         example=2),
    Flag("rl-optimize-device-cache", "bool", "PPO/RL", trainers=RL,
         key=_rl("rl_optimize_device_cache"), example=True),
    Flag("rl-reward-fn", "str", "PPO/RL", trainers=RL, example="correctness",
         maps_to=f"{M}rl_reward_fn (correctness, format, length_penalty or an import path; "
                 "default: none)"),
    Flag("rl-reward-model-path", "str", "PPO/RL", trainers=RL, aliases=("rl-reward-model",),
         example="reward_model",
         maps_to=f"{M}rl_reward_model_path with rl_env_type reward_model"),
    Flag("rl-reward-weights", "json", "PPO/RL", trainers=RL,
         example={"correctness": 1.0, "format": 0.1}, maps_to=f"{M}rl_reward_fn (a mix)"),
    Flag("rl-value-loss-coef", "float", "PPO/RL", default=1.0, trainers=PPO,
         key=f"{M}rl_value_loss_coef", example=0.5),
    Flag("rl-value-clip-range", "float", "PPO/RL", trainers=PPO,
         key=f"{M}rl_clip_range_value", example=0.2),
    Flag("rl-max-new-tokens", "int", "PPO/RL", trainers=RL, key=_rl("max_new_tokens"),
         example=16),
    Flag("rl-temperature", "float", "PPO/RL", trainers=RL, key=_rl("temperature"), example=0.9),
    Flag("rl-top-k", "int", "PPO/RL", trainers=RL, key=_rl("top_k"), example=50),
    Flag("rl-top-p", "float", "PPO/RL", trainers=RL, key=_rl("top_p"), example=0.95),
    # -- distillation ---------------------------------------------------------------------------
    Flag("use-distillation", "bool", "Distillation", trainers=SFT_TRAINERS, example=True,
         maps_to=f"{M}use_distillation (--trainer distillation: DistillationModule)"),
    Flag("teacher-model", "str", "Distillation", needs="use-distillation",
         key={t: f"{M}teacher_model" for t in SFT_TRAINERS}, example="builtin:mini"),
    Flag("teacher-prompt-template", "str", "Distillation", needs="use-distillation",
         key=_distill("teacher_prompt_template"), example="Answer briefly: {input}"),
    Flag("student-prompt-template", "str", "Distillation", needs="use-distillation",
         key=_distill("student_prompt_template"), example="{input}"),
    Flag("distill-temperature", "float", "Distillation", default=3.0, needs="use-distillation",
         key=_distill("temperature"), example=3.5),
    Flag("distill-alpha", "float", "Distillation", default=0.7, needs="use-distillation",
         key=_distill("alpha"), example=0.75),
    Flag("distill-max-teacher-length", "int", "Distillation", default=512,
         needs="use-distillation", key=_distill("distill_max_teacher_length"), example=256),
    # -- sweep ----------------------------------------------------------------------------------
    Flag("use-sweep", "bool", "Sweep", example=True,
         maps_to="aitrain sweep over the translated config (trials in <project-name>/trial_N)"),
    Flag("sweep-backend", "str", "Sweep", default="optuna", needs="use-sweep",
         choices=("optuna", "random", "grid", "tpe", "cmaes"), example="optuna",
         maps_to="sweep sampler (optuna: tpe)"),
    Flag("sweep-n-trials", "int", "Sweep", default=10, needs="use-sweep", example=2,
         maps_to="sweep n_trials"),
    Flag("sweep-metric", "str", "Sweep", default="eval_loss", needs="use-sweep",
         example="eval_loss", maps_to="sweep metric (eval_loss: val/loss)"),
    Flag("sweep-direction", "str", "Sweep", default="minimize", needs="use-sweep",
         choices=("minimize", "maximize"), example="minimize", maps_to="sweep direction"),
    Flag("sweep-params", "json", "Sweep", needs="use-sweep",
         example={"lr": [1e-5, 1e-3, "log_uniform"], "batch_size": [4, 8]},
         maps_to="sweep search_space (guide names such as lr become our dotted keys)"),
    # -- evaluation -----------------------------------------------------------------------------
    Flag("use-enhanced-eval", "bool", "Evaluation", key=f"{M}use_enhanced_eval", example=True),
    Flag("eval-metrics", "str", "Evaluation", default="perplexity", needs="use-enhanced-eval",
         key=f"{M}eval_metrics", convert=values.metric_list, example="perplexity,bleu,rouge"),
    Flag("eval-batch-size", "int", "Evaluation", default=8, example=16,
         maps_to=f"{M}eval_batch_size (and {D}eval_batch_size when given)"),
    Flag("eval-dataset-path", "str", "Evaluation", needs="use-enhanced-eval",
         key=f"{M}eval_dataset_path", example="eval.jsonl"),
    Flag("eval-save-predictions", "bool", "Evaluation", needs="use-enhanced-eval",
         key=f"{M}eval_save_predictions", example=True),
    Flag("eval-benchmark", "str", "Evaluation", needs="use-enhanced-eval",
         key=f"{M}eval_benchmark", example="mmlu"),
    Flag("eval-benchmark-data", "str", "Evaluation", needs="use-enhanced-eval",
         key=f"{M}eval_benchmark_data", example="benchmarks/mmlu", ours=True),
    Flag("eval-callback-period", "int", "Evaluation", needs="use-enhanced-eval",
         key=f"{M}eval_steps", example=50),
    Flag("eval-steps", "int", "Evaluation", example=50,
         maps_to=f"{M}eval_steps; trainer.val_check_interval with --eval-strategy steps"),
    Flag("eval-strategy", "str", "Evaluation", default="epoch", choices=("epoch", "steps", "no"),
         example="steps", maps_to="trainer.val_check_interval (steps), limit_val_batches 0 (no)"),
    Flag("custom-metrics", "json", "Evaluation", example=["bleu", "rouge"],
         maps_to=f"{M}eval_metrics, with use_enhanced_eval"),
    # -- logging and checkpoints --------------------------------------------------------------
    Flag("load-state-from", "str", "Logging & checkpointing", key="ckpt_path",
         example="my-model/checkpoints/last.ckpt"),
    Flag("manual-checkpoint-control", "bool", "Logging & checkpointing", noop=(True, False),
         example=True, maps_to="no effect: checkpoints/last.ckpt is always resumable"),
    Flag("save-state-every-n-steps", "int", "Logging & checkpointing", default=0, example=50,
         maps_to="checkpoint_every_n_steps"),
    Flag("save-steps", "int", "Logging & checkpointing", example=50,
         maps_to="checkpoint_every_n_steps (with --save-strategy steps)"),
    Flag("save-strategy", "str", "Logging & checkpointing", default="epoch",
         choices=("epoch", "steps", "no"), example="steps",
         maps_to="epoch: after each validation; steps: --save-steps; no: "
                 "trainer.enable_checkpointing false"),
    Flag("save-total-limit", "int", "Logging & checkpointing", default=1, noop=(1,), example=1,
         refused="a run keeps one resumable checkpoint (checkpoints/last.ckpt) and its export",
         maps_to="1: what we do"),
    # -- hub and W&B ----------------------------------------------------------------------------
    Flag("push-to-hub", "bool", "Hub & W&B", noop=(False,), example=False,
         refused="nothing uploads from here; the export is a plain Hugging Face folder: "
                 "huggingface-cli upload <repo> <project-name>/export"),
    Flag("token", "str", "Hub & W&B", example="hf_x",
         refused="no tokens on the command line (they land in shell history and the run "
                 "config); set HF_TOKEN in the environment"),
    Flag("username", "str", "Hub & W&B", example="me",
         refused="only --push-to-hub used it, which is not supported"),
    Flag("wandb-token", "str", "Hub & W&B", example="x",
         refused="no tokens on the command line; set WANDB_API_KEY in the environment"),
    # -- advanced: custom losses and step control ------------------------------------------------
    Flag("custom-loss", "str", "Advanced", trainers=SFT_TRAINERS, example="focal",
         maps_to=f"{M}loss (a registered loss, a JSON {{name: weight}} mix, or an import path)"),
    Flag("custom-loss-weights", "json", "Advanced", trainers=SFT_TRAINERS,
         example={"ce": 1.0, "entropy": -0.01},
         maps_to=f"{M}loss weights ({{name: weight}}, or a list for --custom-loss a,b)"),
    Flag("use-forward-backward", "bool", "Advanced", trainers=ALL_AUTOMATIC, example=True,
         maps_to="trainer.callbacks: StepControlCallback (every step is forward_backward + "
                 "optim_step in one training core)"),
    Flag("forward-backward-loss-fn", "str", "Advanced", trainers=SFT_TRAINERS,
         example="cross_entropy",
         maps_to=f"{M}loss (cross_entropy: ce; custom: --forward-backward-custom-fn)"),
    Flag("forward-backward-custom-fn", "str", "Advanced", trainers=SFT_TRAINERS,
         example="my_pkg.losses:my_loss",
         maps_to=f"{M}loss as an import path of a loss (inputs: LossInputs) -> Tensor; never "
                 "eval"),
    Flag("manual-optimizer-control", "bool", "Advanced", trainers=ALL_AUTOMATIC, example=True,
         maps_to="trainer.callbacks: StepControlCallback"),
    Flag("optimizer-step-frequency", "int", "Advanced", trainers=ALL_AUTOMATIC, example=2,
         maps_to="StepControlCallback.optimizer_step_frequency"),
    Flag("grad-clip-value", "float", "Advanced", example=1.0,
         maps_to="trainer.gradient_clip_val (StepControlCallback.gradient_clip_norm with "
                 "--use-forward-backward)"),
    Flag("sample-every-n-steps", "int", "Advanced", default=0, noop=(0,), example=10,
         refused=SAMPLING_REFUSED),
    Flag("sample-prompts", "json", "Advanced", example=["Hello"], refused=SAMPLING_REFUSED),
    Flag("sample-temperature", "float", "Advanced", example=0.7, refused=SAMPLING_REFUSED),
    Flag("sample-top-k", "int", "Advanced", example=50, refused=SAMPLING_REFUSED),
    Flag("sample-top-p", "float", "Advanced", example=0.9, refused=SAMPLING_REFUSED),
    # -- inference ------------------------------------------------------------------------------
    Flag("inference-mode", "bool", "Inference", example=True,
         maps_to="aitrain generate (no training)"),
    Flag("inference-prompts", "str", "Inference", needs="inference-mode", example="prompts.txt",
         maps_to="aitrain generate --prompts_file (a file) or its prompts (comma-separated)"),
    Flag("inference-output", "str", "Inference", needs="inference-mode", example="out.jsonl",
         maps_to="aitrain generate --output (JSON lines; default: "
                 "<project-name>/inference_results.jsonl)"),
    Flag("inference-max-tokens", "int", "Inference", default=256, needs="inference-mode",
         example=100, maps_to="aitrain generate --max_new_tokens"),
    Flag("inference-temperature", "float", "Inference", default=1.0, needs="inference-mode",
         example=0.7, maps_to="aitrain generate --temperature"),
    Flag("inference-top-p", "float", "Inference", default=1.0, needs="inference-mode",
         example=0.9, maps_to="aitrain generate --top_p"),
    Flag("inference-top-k", "int", "Inference", default=50, needs="inference-mode", example=40,
         maps_to="aitrain generate --top_k"),
    # -- this command ---------------------------------------------------------------------------
    Flag("interactive", "bool", "Help", noop=(False,), example=False,
         refused="the wizard is not ported; aitrain llm ... --print-config writes a config to "
                 "edit"),
    Flag("preview-trainer", "str", "Help", choices=TRAINERS, example="dpo",
         maps_to="--help lists the flags of this trainer"),
    Flag("help-trainer", "str", "Help", choices=TRAINERS, example="dpo",
         maps_to="--help lists the flags of this trainer (the guide's old name)"),
    Flag("print-config", "bool", "Help", example=True, ours=True,
         maps_to="print the aitrain fit config (or sweep config, or generate command); no run"),
    Flag("overwrite", "bool", "Help", key="overwrite", example=True, ours=True,
         maps_to="replace the run already in <project-name>"),
)

BY_NAME: dict[str, Flag] = {}
for _flag in FLAGS:
    for _name in (_flag.name, *_flag.aliases):
        if _name in BY_NAME:
            raise ValueError(f"flag --{_name} is listed twice")
        BY_NAME[_name] = _flag
#: Switches that other flags need, with the reason they are off.
SWITCHES = frozenset(flag.needs for flag in FLAGS if flag.needs)
#: The flags of ``--inference-mode`` (everything else trains).
INFERENCE_FLAGS = frozenset({"model", "project-name", "chat-format", "chat-template", "seed",
                             "print-config", "inference-mode", "inference-prompts",
                             "inference-output", "inference-max-tokens",
                             "inference-temperature", "inference-top-p", "inference-top-k",
                             "mixed-precision"})
