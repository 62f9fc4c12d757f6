"""The reward-model environment scores replies with a trained reward model, and the RL options
that would be ignored or cannot work are refused in one line naming the field."""

import pytest

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation import SamplingConfig
from autotrain_pl.models import RewardScorer, load_model, load_tokenizer
from autotrain_pl.models.reward import check_reward_model_ref
from autotrain_pl.objectives import GRPOModule
from autotrain_pl.rendering import get_renderer
from autotrain_pl.rl import CombinedReward
from autotrain_pl.rl.envs import ENVIRONMENTS
from autotrain_pl.rl.rollouts import collect_rollouts

PROMPT = [{"role": "user", "content": "Say something nice."}]


@pytest.fixture(scope="module")
def reward_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("reward_model")
    load_model("builtin:tiny", head="reward").save_pretrained(path)
    load_tokenizer("builtin:tiny").save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def causal_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("causal")
    load_model("builtin:tiny").save_pretrained(path)
    load_tokenizer("builtin:tiny").save_pretrained(path)
    return path


def test_replies_are_scored_by_the_reward_model_with_the_other_terms(reward_model_dir,
                                                                    scripted_engine):
    tokenizer = load_tokenizer("builtin:tiny")
    renderer = get_renderer("chatml", tokenizer)
    scorer = RewardScorer.load(str(reward_model_dir), chat_format="chatml", device="cpu")
    problem = {"prompt_ids": renderer.build_generation_prompt(PROMPT), "messages": PROMPT,
               "reference": None}
    replies = ["thank you", "you are kind and good", "no"]
    builder = ENVIRONMENTS.get("reward_model")(
        problem, CombinedReward({"length_penalty": 0.5}), max_new_tokens=16,
        reward_model=scorer, reward_model_weight=2.0)
    engine = scripted_engine(tokenizer, renderer, replies)
    rollouts = collect_rollouts([builder], engine, renderer, 3, SamplingConfig(max_new_tokens=16))
    scores = scorer.score([[*PROMPT, {"role": "assistant", "content": r}] for r in replies])
    assert len(set(scores)) == 3  # the model tells the replies apart
    for rollout, score in zip(rollouts, scores, strict=True):
        penalty = -rollout.completion_length / 16
        assert rollout.reward == pytest.approx(2.0 * score + 0.5 * penalty, abs=1e-5)


def test_only_a_sequence_classifier_is_a_reward_model(reward_model_dir, causal_dir):
    check_reward_model_ref(str(reward_model_dir), "model.rl_reward_model_path")
    with pytest.raises(AutotrainError, match=r"^model.rl_reward_model_path=.*LlamaForCausalLM, "
                                             r"not a sequence-classification reward model"):
        check_reward_model_ref(str(causal_dir), "model.rl_reward_model_path")
    with pytest.raises(AutotrainError, match="model.rl_reward_model_path=.*does not exist"):
        check_reward_model_ref("/no/such/reward_model", "model.rl_reward_model_path")


@pytest.mark.parametrize("options,message", [
    ({"rl_env_type": "reward_model"}, "rl_env_type=reward_model needs model.rl_reward_model_path"),
    ({"rl_reward_fn": {"correctness": 1.0, "reward_model": 0.5}},
     "rl_reward_fn weighs reward_model, but model.rl_reward_model_path is not set"),
    ({"rl_env_options": {"max_turn": 3}, "rl_env_type": "guess_number"},
     "rl_env_options: rl_env_type=guess_number has no option max_turn; its options: max_turns"),
    ({"rl_env_options": {"reward_model": "x"}}, "arithmetic has no option reward_model"),
    ({"rl_env_type": "calculator"}, "rl_env_type"),
])
def test_rl_options_that_would_be_ignored_are_refused(options, message):
    with pytest.raises(AutotrainError, match=message):
        GRPOModule(model_name_or_path="builtin:tiny", **options)


def test_a_reward_model_path_needs_its_environment_and_its_term(reward_model_dir, causal_dir):
    path = str(reward_model_dir)
    with pytest.raises(AutotrainError, match="is read by rl_env_type=reward_model, not arithmetic"):
        GRPOModule(model_name_or_path="builtin:tiny", rl_reward_model_path=path)
    with pytest.raises(AutotrainError, match=r"rl_reward_fn \(length_penalty\) leaves out"):
        GRPOModule(model_name_or_path="builtin:tiny", rl_env_type="reward_model",
                   rl_reward_model_path=path, rl_reward_fn="length_penalty")
    with pytest.raises(AutotrainError, match="not a sequence-classification reward model"):
        GRPOModule(model_name_or_path="builtin:tiny", rl_env_type="reward_model",
                   rl_reward_model_path=str(causal_dir))
    module = GRPOModule(model_name_or_path="builtin:tiny", rl_env_type="reward_model",
                        rl_reward_model_path=path, rl_reward_fn={"reward_model": 2.0,
                                                                 "length_penalty": 0.1})
    assert module.reward_model_weight == 2.0 and module.reward.weights == {"length_penalty": 0.1}
