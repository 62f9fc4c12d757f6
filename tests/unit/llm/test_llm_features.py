"""``aitrain llm``: each feature group of the guide (distillation, enhanced evaluation, message
rendering, DPO/ORPO/reward, PPO/RL, custom losses and forward-backward) as fit-config keys, with
the values the guide documents."""

import pytest
from llm_cli_helpers import init

from autotrain_pl.errors import AutotrainError


# -- distillation -------------------------------------------------------------------------------
def test_distillation_on_sft_with_the_guides_defaults(llm_config):
    model = init(llm_config("--trainer", "sft", "--use-distillation", "--teacher-model",
                            "gpt2-medium"))
    assert model["use_distillation"] is True
    assert model["teacher_model"] == "gpt2-medium"
    # Integration guide: temperature 3.0, alpha 0.7, max teacher length 512
    assert model["distillation"] == {"temperature": 3.0, "alpha": 0.7,
                                     "distill_max_teacher_length": 512}


def test_the_guides_distillation_example(llm_config):
    model = init(llm_config("--trainer", "sft", "--use-distillation", "--teacher-model",
                            "gpt-3.5-turbo", "--teacher-prompt-template",
                            "Complex prompt: {input}", "--student-prompt-template", "{input}",
                            "--distill-temperature", "3.0", "--distill-alpha", "0.7"))
    assert model["distillation"]["teacher_prompt_template"] == "Complex prompt: {input}"
    assert model["distillation"]["student_prompt_template"] == "{input}"


def test_trainer_distillation_is_the_distillation_module(llm_config):
    config = llm_config("--trainer", "distillation", "--teacher-model", "gpt2-medium",
                        "--distill-alpha", "0.75")
    model = init(config)
    assert config["model"]["class_path"] == "autotrain_pl.objectives.DistillationModule"
    assert (model["teacher_model"], model["alpha"], model["temperature"],
            model["distill_max_teacher_length"]) == ("gpt2-medium", 0.75, 3.0, 512)
    assert "use_distillation" not in model


@pytest.mark.parametrize("flags, message", [
    (["--distill-alpha", "0.5"], "--distill-alpha applies with --use-distillation"),
    (["--use-distillation"], "--use-distillation needs --teacher-model"),
    (["--trainer", "dpo", "--use-distillation"], "--use-distillation applies to --trainer "
                                                  "default/distillation/sft, not --trainer dpo"),
    (["--trainer", "distillation", "--use-distillation", "false"], "--trainer distillation "
                                                                   "distils"),
])
def test_distillation_errors(llm_config, flags, message):
    with pytest.raises(AutotrainError, match=message):
        llm_config(*flags)


# -- enhanced evaluation ------------------------------------------------------------------------
def test_enhanced_eval_with_the_guides_defaults(llm_config):
    model = init(llm_config("--use-enhanced-eval"))
    # Integration guide: eval metrics default perplexity, eval batch size default 8
    assert model["use_enhanced_eval"] is True
    assert model["eval_metrics"] == ["perplexity"]
    assert model["eval_batch_size"] == 8


def test_the_guides_enhanced_eval_examples(llm_config):
    config = llm_config("--use-enhanced-eval", "--eval-metrics", "perplexity,bleu,rouge",
                        "--eval-batch-size", "16")
    assert init(config)["eval_metrics"] == ["perplexity", "bleu", "rouge"]
    assert init(config)["eval_batch_size"] == 16
    assert init(config, "data")["eval_batch_size"] == 16
    model = init(llm_config("--use-enhanced-eval", "--eval-metrics",
                            "perplexity,bleu,rouge,bert_score", "--eval-save-predictions",
                            "--eval-callback-period", "500"))
    assert model["eval_metrics"] == ["perplexity", "bleu", "rouge", "bertscore"]
    assert model["eval_save_predictions"] is True
    assert model["eval_steps"] == 500
    model = init(llm_config("--use-enhanced-eval", "--eval-benchmark", "arc",
                            "--eval-benchmark-data", "bench/arc", "--eval-dataset-path",
                            "eval.jsonl"))
    assert (model["eval_benchmark"], model["eval_benchmark_data"], model["eval_dataset_path"]) \
        == ("arc", "bench/arc", "eval.jsonl")


def test_custom_metrics_turn_the_enhanced_eval_on(llm_config):
    model = init(llm_config("--custom-metrics", '["bleu", "rouge"]'))
    assert model["use_enhanced_eval"] is True
    assert model["eval_metrics"] == ["bleu", "rouge"]


def test_eval_flags_need_the_enhanced_eval(llm_config):
    with pytest.raises(AutotrainError, match="--eval-metrics applies with --use-enhanced-eval"):
        llm_config("--eval-metrics", "bleu")
    with pytest.raises(AutotrainError, match="--eval-steps applies with --use-enhanced-eval"):
        llm_config("--eval-steps", "10")


# -- message rendering --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["chatml", "zephyr", "alpaca", "vicuna", "mistral", "llama3"])
def test_chat_format_passes_our_names_through(llm_config, name):
    assert init(llm_config("--chat-format", name), "data")["chat_format"] == name


def test_chat_template_tokenizer_is_the_models_own(llm_config):
    assert init(llm_config("--chat-template", "tokenizer"), "data")["chat_format"] == "native"
    assert "chat_format" not in init(llm_config("--chat-template", "none"), "data")
    # --chat-format overrides --chat-template, as the guide's LLMTrainingParams says
    assert init(llm_config("--chat-template", "zephyr", "--chat-format", "chatml"),
                "data")["chat_format"] == "chatml"


def test_a_chat_format_we_do_not_have_is_refused(llm_config):
    with pytest.raises(AutotrainError, match="--chat-template gemma3: not supported; our chat "
                                             "formats are"):
        llm_config("--chat-template", "gemma3")


def test_token_weights(llm_config):
    weights = {"system": 0.5, "user": 0.0, "assistant": 1.0}
    data = init(llm_config("--token-weights", '{"system": 0.5, "user": 0.0, "assistant": 1.0}'),
                "data")
    assert data["token_weights"] == weights


# -- DPO / ORPO / reward ------------------------------------------------------------------------
def test_dpo(llm_config):
    config = llm_config("--trainer", "dpo", "--prompt-text-column", "question",
                        "--text-column", "better", "--rejected-text-column", "worse",
                        "--model-ref", "gpt2")
    model = init(config)
    assert config["model"]["class_path"] == "autotrain_pl.objectives.DPOModule"
    assert model["beta"] == 0.1  # LLMTrainingParams: dpo_beta 0.1
    assert model["ref_model"] == "gpt2"
    assert init(config, "data")["column_mapping"] == {"question": "prompt", "better": "chosen",
                                                      "worse": "rejected"}
    assert init(llm_config("--trainer", "dpo", "--dpo-beta", "0.2"))["beta"] == 0.2


def test_orpo_is_dpo_with_the_orpo_loss(llm_config):
    config = llm_config("--trainer", "orpo", "--dpo-beta", "0.1")
    assert config["model"]["class_path"] == "autotrain_pl.objectives.DPOModule"
    assert init(config)["loss_type"] == "orpo"
    with pytest.raises(AutotrainError, match="--model-ref applies to --trainer dpo/grpo/ppo, "
                                             "not --trainer orpo"):
        llm_config("--trainer", "orpo", "--model-ref", "gpt2")


def test_reward(llm_config):
    config = llm_config("--trainer", "reward", "--rejected-text-column", "worse")
    assert config["model"]["class_path"] == "autotrain_pl.objectives.RewardModule"
    assert init(config, "data")["column_mapping"] == {"worse": "rejected"}


def test_a_flag_of_another_trainer_names_both(llm_config):
    with pytest.raises(AutotrainError, match="--dpo-beta applies to --trainer dpo/orpo, not "
                                             "--trainer sft"):
        llm_config("--trainer", "sft", "--dpo-beta", "0.1")
    with pytest.raises(AutotrainError, match="--rl-gamma applies to --trainer ppo, not "
                                             "--trainer dpo"):
        llm_config("--trainer", "dpo", "--rl-gamma", "0.9")


# -- PPO / RL -----------------------------------------------------------------------------------
def test_ppo_with_the_guides_defaults(llm_config):
    config = llm_config("--trainer", "ppo", "--rl-reward-model-path", "rm")
    model, trainer = init(config), config["trainer"]
    assert config["model"]["class_path"] == "autotrain_pl.objectives.PPOModule"
    # Integration guide, PPO/RL: gamma 0.99, GAE lambda 0.95, KL 0.1, value loss 1.0, clip 0.2
    assert (model["rl_gamma"], model["rl_gae_lambda"], model["rl_kl_coef"],
            model["rl_value_loss_coef"], model["rl_clip_range"]) == (0.99, 0.95, 0.1, 1.0, 0.2)
    assert model["rl_env_type"] == "reward_model" and model["rl_reward_model_path"] == "rm"
    # PPO steps its optimizer itself: clipping on the objective, no Lightning accumulation
    assert model["max_grad_norm"] == 1.0
    assert "accumulate_grad_batches" not in trainer and "gradient_clip_val" not in trainer


def test_the_guides_ppo_example(llm_config):
    model = init(llm_config("--train", "--trainer", "ppo", "--rl-gamma", "0.99", "--rl-kl-coef",
                            "0.1", "--rl-clip-range", "0.2", "--rl-env-type", "text_generation",
                            "--rl-reward-model", "path/to/reward_model"))
    assert (model["rl_env_type"], model["rl_reward_model_path"]) == \
        ("reward_model", "path/to/reward_model")


def test_ppo_flags_and_rewards(llm_config):
    model = init(llm_config("--trainer", "ppo", "--rl-num-ppo-epochs", "2", "--rl-chunk-size",
                            "16", "--rl-mini-batch-size", "4", "--rl-value-clip-range", "0.3",
                            "--rl-max-new-tokens", "32", "--rl-temperature", "0.8",
                            "--rl-top-k", "40", "--rl-top-p", "0.9", "--rl-multi-objective",
                            "--rl-env-type", "multi_objective", "--rl-reward-weights",
                            '{"correctness": 1.0, "format": 0.1}', "--rl-env-config", "{}"))
    assert (model["rl_num_ppo_epochs"], model["rl_chunk_size"], model["rl_mini_batch_size"],
            model["rl_clip_range_value"], model["max_new_tokens"], model["temperature"],
            model["top_k"], model["top_p"]) == (2, 16, 4, 0.3, 32, 0.8, 40, 0.9)
    assert model["rl_env_type"] == "qa"
    assert model["rl_reward_fn"] == {"correctness": 1.0, "format": 0.1}
    assert init(llm_config("--trainer", "ppo", "--rl-reward-fn", "correctness",
                           "--rl-env-type", "arithmetic"))["rl_reward_fn"] == "correctness"


def test_grpo_maps_the_shared_rl_flags(llm_config):
    config = llm_config("--trainer", "grpo", "--rl-reward-fn", "correctness", "--rl-kl-coef",
                        "0.04", "--rl-clip-range", "0.28")
    model = init(config)
    assert config["model"]["class_path"] == "autotrain_pl.objectives.GRPOModule"
    assert (model["beta"], model["epsilon"], model["rl_env_type"]) == (0.04, 0.28, "qa")
    assert "rl_gamma" not in model  # the guide's PPO defaults are not GRPO's


@pytest.mark.parametrize("flags, message", [
    (["--trainer", "ppo"], "--trainer ppo needs a reward"),
    (["--trainer", "ppo", "--rl-reward-fn", "custom"], "--rl-reward-fn custom: give the reward "
                                                      "as an import path"),
    (["--trainer", "ppo", "--rl-env-type", "preference_comparison", "--rl-reward-fn", "format"],
     "preference_comparison: not supported"),
    (["--trainer", "ppo", "--rl-multi-objective", "--rl-reward-fn", "format"],
     "--rl-multi-objective mixes rewards by --rl-reward-weights"),
    (["--trainer", "ppo", "--rl-reward-fn", "format", "--gradient-accumulation", "4"],
     "--gradient-accumulation applies to --trainer .*, not --trainer ppo"),
])
def test_ppo_errors(llm_config, flags, message):
    with pytest.raises(AutotrainError, match=message):
        llm_config(*flags)


# -- custom losses and forward-backward -----------------------------------------------------------
def test_custom_loss_shapes(llm_config):
    assert init(llm_config("--custom-loss", "focal"))["loss"] == "focal"
    assert init(llm_config("--custom-loss", "composite", "--custom-loss-weights",
                           '{"ce": 1.0, "entropy": -0.01}'))["loss"] == \
        {"ce": 1.0, "entropy": -0.01}
    assert init(llm_config("--custom-loss", "ce,entropy", "--custom-loss-weights",
                           "[1.0, -0.01]"))["loss"] == {"ce": 1.0, "entropy": -0.01}
    assert init(llm_config("--custom-loss", '{"ce": 1.0, "focal": 0.5}'))["loss"] == \
        {"ce": 1.0, "focal": 0.5}
    with pytest.raises(AutotrainError, match="loss 'variance' is not a registered loss"):
        llm_config("--custom-loss", "variance")


def test_forward_backward_maps_onto_the_step_control_callback(llm_config):
    config = llm_config("--use-forward-backward", "--forward-backward-loss-fn", "cross_entropy",
                        "--gradient-accumulation-steps", "4", "--grad-clip-value", "0.5")
    assert init(config)["loss"] == "ce"
    assert config["trainer"]["callbacks"] == [{
        "class_path": "autotrain_pl.callbacks.StepControlCallback",
        "init_args": {"optimizer_step_frequency": 4, "gradient_clip_norm": 0.5}}]
    assert "accumulate_grad_batches" not in config["trainer"]
    config = llm_config("--manual-optimizer-control", "--optimizer-step-frequency", "2")
    assert config["trainer"]["callbacks"][0]["init_args"]["optimizer_step_frequency"] == 2


def test_the_custom_fn_is_an_import_path(llm_config):
    model = init(llm_config("--use-forward-backward", "--forward-backward-loss-fn", "custom",
                            "--forward-backward-custom-fn", "my_pkg.losses:my_loss"))
    assert model["loss"] == "my_pkg.losses.my_loss"


@pytest.mark.parametrize("code", ["lambda model, inputs, outputs: outputs.loss",
                                  "def f(model, inputs, outputs):\n    return outputs.loss",
                                  "torch.mean(outputs.logits)"])
def test_a_string_of_code_is_never_evaluated(llm_config, code):
    with pytest.raises(AutotrainError, match="we import user code by path and never eval "
                                             "strings"):
        llm_config("--forward-backward-custom-fn", code)


def test_policy_gradient_losses_need_rollouts(llm_config):
    with pytest.raises(AutotrainError, match="--forward-backward-loss-fn ppo: needs advantages"):
        llm_config("--use-forward-backward", "--forward-backward-loss-fn", "ppo")
    with pytest.raises(AutotrainError, match="--optimizer-step-frequency applies with "
                                             "--use-forward-backward"):
        llm_config("--optimizer-step-frequency", "2")
