"""Every numeric option of the configs, found from the init signatures, with its valid range.

``numeric_options()`` reads the signatures (objectives, ``ChatDataModule``, ``LoraOptions``,
``QuantizationOptions``, the sampling keys of distillation, the Trainer) and ``RANGES`` says what
each one accepts. An option in the signatures without a range here fails
``test_every_numeric_option_has_a_declared_range``: a new option comes with its range.
``bad_values(option)`` draws numbers outside the range, never inside it.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

#: Objective class to construct for the options its base classes declare.
CONCRETE = {"ObjectiveModule": "SFTModule", "PairObjective": "DPOModule",
            "RLObjective": "GRPOModule"}
#: Data each objective trains on (synthetic: no files).
DATA = {"SFTModule": "synthetic:arithmetic?n=8", "DistillationModule": "synthetic:arithmetic?n=8",
        "GRPOModule": "synthetic:arithmetic?n=8", "PPOModule": "synthetic:arithmetic?n=8",
        "DPOModule": "synthetic:preference?n=8", "RewardModule": "synthetic:preference?n=8",
        "KTOModule": "synthetic:unpaired_preference?n=8"}


@dataclass(frozen=True)
class Range:
    """What an option accepts.

    Args:
        low, high: bounds (None: unbounded); ``*_open`` excludes the bound itself.
        integer: an integer option (bad values are integers too).
        also: values allowed outside the bounds (``-1`` for "no limit").
        choices: the only values allowed (``quantization.bits``).
        shape: ``number``, ``pair`` (two numbers, like ``betas``), ``list`` or ``mapping``
            (numbers as values, like ``token_weights``).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    also: tuple[int, ...] = ()
    choices: tuple[int, ...] = ()
    shape: str = "number"


def positive_int(low: int = 1, **kw) -> Range:
    return Range(low=low, integer=True, **kw)


POSITIVE = Range(low=0, low_open=True)
NON_NEGATIVE = Range(low=0)
UNIT = Range(low=0, high=1)
FINITE = Range()


@dataclass(frozen=True)
class Option:
    """One numeric option: where it lives and how to set it."""

    owner: str  # objective class name, "data", "lora", "quantization", "trainer", "run",
    #             "teacher_sampling" or "student_sampling"
    name: str
    range: Range
    context: dict[str, Any] = field(default_factory=dict)  # other init args it needs

    @property
    def objective(self) -> str:
        if self.owner in ("data", "trainer", "run"):
            return "SFTModule"
        if self.owner in ("lora", "quantization"):
            return "SFTModule"
        if self.owner.endswith("_sampling"):
            return "DistillationModule"
        return CONCRETE.get(self.owner, self.owner)

    @property
    def key(self) -> str:
        """The config key, as a user types it."""
        if self.owner == "data":
            return f"data.init_args.{self.name}"
        if self.owner == "trainer":
            return f"trainer.{self.name}"
        if self.owner == "run":
            return self.name
        if self.owner in ("lora", "quantization"):
            return f"model.init_args.{self.owner}.{self.name}"
        if self.owner.endswith("_sampling"):
            return f"model.init_args.{self.owner}"
        return f"model.init_args.{self.name}"

    @property
    def names(self) -> list[str]:
        """What the error must contain to name the option."""
        if self.owner == "trainer":
            return [f"trainer.{self.name}"]
        if self.owner in ("lora", "quantization"):
            return [f"{self.owner}.{self.name}"]
        if self.owner.endswith("_sampling"):
            return [self.owner, self.name]
        return [self.name]

    def __str__(self) -> str:
        return f"{self.owner}.{self.name}"


RANGES: dict[tuple[str, str], Range | tuple[Range, dict[str, Any]]] = {
    # ObjectiveModule (every objective), tried on SFTModule
    ("ObjectiveModule", "learning_rate"): POSITIVE,
    ("ObjectiveModule", "weight_decay"): NON_NEGATIVE,
    ("ObjectiveModule", "betas"): Range(low=0, high=1, high_open=True, shape="pair"),
    ("ObjectiveModule", "warmup_steps"): positive_int(0),
    ("ObjectiveModule", "warmup_ratio"): Range(low=0, high=1, high_open=True),
    ("ObjectiveModule", "eval_steps"): (positive_int(1), {"use_enhanced_eval": True}),
    ("ObjectiveModule", "eval_batch_size"): (positive_int(1), {"use_enhanced_eval": True}),
    ("ObjectiveModule", "eval_benchmark_limit"): (positive_int(1), {"use_enhanced_eval": True}),
    ("ObjectiveModule", "eval_benchmark_num_fewshot"): (positive_int(0),
                                                        {"use_enhanced_eval": True}),
    ("ObjectiveModule", "max_consecutive_skipped_steps"): positive_int(1),
    ("SFTModule", "label_smoothing"): Range(low=0, high=1, high_open=True),
    ("SFTModule", "loss"): Range(shape="mapping"),  # coefficients: any finite number
    ("DistillationModule", "temperature"): POSITIVE,
    ("DistillationModule", "alpha"): UNIT,
    ("DistillationModule", "beta"): UNIT,
    ("DistillationModule", "lmbda"): UNIT,
    ("DistillationModule", "distill_max_teacher_length"): positive_int(1),
    ("DistillationModule", "kd_top_k"): positive_int(1),
    ("DPOModule", "beta"): POSITIVE,
    ("DPOModule", "label_smoothing"): Range(low=0, high=0.5),  # for loss_type sigmoid
    ("DPOModule", "rpo_alpha"): NON_NEGATIVE,
    ("DPOModule", "f_alpha_divergence_coef"): FINITE,
    ("DPOModule", "discopop_tau"): POSITIVE,
    ("DPOModule", "simpo_gamma"): (NON_NEGATIVE, {"loss_type": "simpo"}),
    ("DPOModule", "loss_weights"): (Range(shape="list"), {"loss_type": ["sigmoid"]}),
    ("KTOModule", "beta"): POSITIVE,
    ("KTOModule", "desirable_weight"): POSITIVE,
    ("KTOModule", "undesirable_weight"): POSITIVE,
    ("RewardModule", "center_rewards_coefficient"): NON_NEGATIVE,
    ("GRPOModule", "num_generations"): positive_int(2),
    ("GRPOModule", "beta"): NON_NEGATIVE,
    ("GRPOModule", "epsilon"): Range(low=0, high=1, high_open=True),
    ("GRPOModule", "epsilon_high"): NON_NEGATIVE,
    ("GRPOModule", "num_iterations"): positive_int(1),
    ("GRPOModule", "max_new_tokens"): positive_int(1),
    ("RLObjective", "max_new_tokens"): positive_int(1),
    ("RLObjective", "temperature"): POSITIVE,
    ("RLObjective", "top_p"): Range(low=0, high=1, low_open=True),
    ("RLObjective", "top_k"): positive_int(0),
    ("RLObjective", "rl_chunk_size"): positive_int(1),
    ("RLObjective", "rl_mini_batch_size"): positive_int(1),
    ("RLObjective", "max_grad_norm"): POSITIVE,
    ("RLObjective", "rl_reward_fn"): (Range(shape="mapping"), {}),  # weights: finite
    ("PPOModule", "samples_per_prompt"): positive_int(1),
    ("PPOModule", "rl_gamma"): UNIT,
    ("PPOModule", "rl_gae_lambda"): UNIT,
    ("PPOModule", "rl_kl_coef"): NON_NEGATIVE,
    ("PPOModule", "rl_target_kl"): POSITIVE,
    ("PPOModule", "rl_kl_horizon"): POSITIVE,
    ("PPOModule", "rl_clip_range"): Range(low=0, high=1, low_open=True, high_open=True),
    ("PPOModule", "rl_clip_range_value"): POSITIVE,
    ("PPOModule", "rl_value_loss_coef"): NON_NEGATIVE,
    ("PPOModule", "entropy_coef"): NON_NEGATIVE,
    ("PPOModule", "rl_num_ppo_epochs"): positive_int(1),
    # nested option records
    ("lora", "r"): positive_int(1),
    ("lora", "alpha"): Range(low=0, low_open=True, integer=True),
    ("lora", "dropout"): Range(low=0, high=1, high_open=True),
    ("quantization", "bits"): (Range(integer=True, choices=(4, 8)), {"lora": {"r": 4}}),
    # distillation sampling keys (SamplingConfig)
    ("sampling", "max_new_tokens"): positive_int(1),
    ("sampling", "min_new_tokens"): positive_int(0),
    ("sampling", "temperature"): NON_NEGATIVE,
    ("sampling", "top_k"): positive_int(0),
    ("sampling", "top_p"): Range(low=0, high=1, low_open=True),
    ("sampling", "min_p"): UNIT,
    ("sampling", "typical_p"): Range(low=0, high=1, low_open=True),
    ("sampling", "repetition_penalty"): POSITIVE,
    ("sampling", "num_beams"): positive_int(1),
    ("sampling", "num_return_sequences"): positive_int(1),
    ("sampling", "seed"): None,  # any integer
    ("sampling", "stop"): None,  # stop strings or token ids, not a range
    # ChatDataModule
    ("data", "batch_size"): positive_int(1),
    ("data", "eval_batch_size"): positive_int(1),
    ("data", "max_length"): positive_int(1),
    ("data", "valid_fraction"): Range(low=0, high=1, high_open=True),
    ("data", "seed"): positive_int(0),
    ("data", "max_tokens_per_batch"): positive_int(1),
    ("data", "pad_to_multiple_of"): positive_int(1),
    ("data", "num_workers"): positive_int(0),
    ("data", "max_samples"): positive_int(1),
    ("data", "token_weights"): Range(low=0, shape="mapping"),
    # Lightning's Trainer
    ("trainer", "max_steps"): positive_int(0, also=(-1,)),
    ("trainer", "min_steps"): positive_int(0),
    ("trainer", "max_epochs"): positive_int(0, also=(-1,)),
    ("trainer", "min_epochs"): positive_int(0),
    ("trainer", "accumulate_grad_batches"): positive_int(1),
    ("trainer", "gradient_clip_val"): NON_NEGATIVE,
    ("trainer", "val_check_interval"): Range(low=0, low_open=True),
    ("trainer", "check_val_every_n_epoch"): positive_int(1),
    ("trainer", "num_sanity_val_steps"): positive_int(0, also=(-1,)),
    ("trainer", "log_every_n_steps"): positive_int(0),
    ("trainer", "limit_train_batches"): NON_NEGATIVE,
    ("trainer", "limit_val_batches"): NON_NEGATIVE,
    ("trainer", "limit_test_batches"): NON_NEGATIVE,
    ("trainer", "limit_predict_batches"): NON_NEGATIVE,
    ("trainer", "overfit_batches"): NON_NEGATIVE,
    ("trainer", "fast_dev_run"): positive_int(0),
    ("trainer", "num_nodes"): positive_int(1),
    ("trainer", "devices"): positive_int(1, also=(-1,)),
    ("trainer", "reload_dataloaders_every_n_epochs"): positive_int(0),
    ("trainer", "precision"): None,  # named choices (32, "bf16-mixed", ...), not a range
    ("trainer", "max_time"): None,  # a duration ("00:12:00:00", {hours: 1}), not a number
    # run options of ``aitrain fit``
    ("run", "seed_everything"): Range(low=0, high=2**32 - 1, integer=True),
    ("run", "checkpoint_every_n_steps"): positive_int(1),
}


def _is_numeric(annotation: object) -> bool:
    if annotation is bool:
        return False
    if annotation in (int, float):
        return True
    return any(_is_numeric(arg) for arg in typing.get_args(annotation))


def _init_parameters(cls: type) -> list[tuple[str, str, object]]:
    """``(declaring class, name, annotation)`` of ``cls``'s init, through its ``**kwargs``."""
    found = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        hints = typing.get_type_hints(init)
        parameters = list(inspect.signature(init).parameters.values())
        found += [(klass.__name__, p.name, hints.get(p.name)) for p in parameters
                  if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return found


def signature_options() -> list[tuple[str, str]]:
    """``(owner, name)`` of every numeric option the signatures declare."""
    from lightning.pytorch import Trainer

    import autotrain_pl.objectives as objectives
    from autotrain_pl.data import ChatDataModule
    from autotrain_pl.generation import SamplingConfig
    from autotrain_pl.models import LoraOptions, QuantizationOptions
    from autotrain_pl.objectives.base import ObjectiveModule

    found: dict[tuple[str, str], None] = {}
    for name in objectives.__all__:
        cls = getattr(objectives, name)
        if inspect.isclass(cls) and issubclass(cls, ObjectiveModule):
            for owner, option, annotation in _init_parameters(cls):
                if _is_numeric(annotation):
                    found[(owner, option)] = None
    for owner, record in (("lora", LoraOptions), ("quantization", QuantizationOptions),
                          ("sampling", SamplingConfig)):
        hints = typing.get_type_hints(record)
        for item in dataclasses.fields(record):
            if _is_numeric(hints[item.name]):
                found[(owner, item.name)] = None
    for owner, cls in (("data", ChatDataModule), ("trainer", Trainer)):
        for _, option, annotation in _init_parameters(cls):
            if _is_numeric(annotation):
                found[(owner, option)] = None
    found[("run", "seed_everything")] = found[("run", "checkpoint_every_n_steps")] = None
    return list(found)


def numeric_options() -> list[Option]:
    """Every declared option with a range, the sampling keys once for teacher and student."""
    options = []
    for (owner, name), spec in RANGES.items():
        if spec is None:
            continue
        bounds, context = spec if isinstance(spec, tuple) else (spec, {})
        owners = ("teacher_sampling", "student_sampling") if owner == "sampling" else (owner,)
        options += [Option(o, name, bounds, context) for o in owners]
    return options


# -- values out of range ---------------------------------------------------------------------------
_NON_FINITE = [math.nan, math.inf, -math.inf]


def _bad_numbers(bounds: Range) -> st.SearchStrategy[float | int]:
    if bounds.choices:
        return st.integers(-64, 64).filter(lambda v: v not in bounds.choices)
    parts: list[st.SearchStrategy] = []
    allowed = set(bounds.also)
    if bounds.integer:
        if bounds.low is not None:
            top = int(bounds.low) - (0 if bounds.low_open else 1)
            parts.append(st.integers(max_value=top).filter(lambda v: v not in allowed))
        if bounds.high is not None:
            bottom = int(bounds.high) + (0 if bounds.high_open else 1)
            parts.append(st.integers(min_value=bottom).filter(lambda v: v not in allowed))
        return st.one_of(parts)
    if bounds.low is not None:
        parts.append(st.floats(max_value=bounds.low, exclude_max=not bounds.low_open,
                               allow_nan=False, allow_infinity=False))
    if bounds.high is not None:
        parts.append(st.floats(min_value=bounds.high, exclude_min=not bounds.high_open,
                               allow_nan=False, allow_infinity=False))
    parts.append(st.sampled_from(_NON_FINITE))
    return st.one_of(parts)


def _edges(bounds: Range) -> list[float | int]:
    """The bad numbers next to each bound, and the non-finite ones."""
    if bounds.choices:
        return [min(bounds.choices) - 1, max(bounds.choices) + 1, 0]
    edges: list[float | int] = []
    if bounds.integer:
        if bounds.low is not None:
            edges.append(int(bounds.low) - (0 if bounds.low_open else 1))
        if bounds.high is not None:
            edges.append(int(bounds.high) + (0 if bounds.high_open else 1))
        return [e for e in edges if e not in bounds.also]
    if bounds.low is not None:
        edges.append(float(bounds.low) if bounds.low_open else math.nextafter(bounds.low, -1e9))
    if bounds.high is not None:
        edges.append(float(bounds.high) if bounds.high_open else math.nextafter(bounds.high, 1e9))
    return [*edges, *_NON_FINITE]


def _shaped(option: Option, number: Any) -> Any:
    """``number`` as a value of ``option`` (a pair, a list or a mapping holding it)."""
    if option.range.shape == "pair":
        return [number, 0.5]
    if option.range.shape == "list":
        return [number]
    if option.range.shape == "mapping":
        return {{"loss": "ce", "rl_reward_fn": "correctness"}.get(option.name, "user"): number}
    if option.owner.endswith("_sampling"):
        return {option.name: number}
    return number


def edge_values(option: Option) -> list[Any]:
    """Bad values next to the bounds and the non-finite ones: always tried."""
    return [_shaped(option, edge) for edge in _edges(option.range)]


def bad_values(option: Option) -> st.SearchStrategy[Any]:
    """Values of ``option`` outside its range, in the option's shape."""
    bad = _bad_numbers(option.range)
    if option.range.shape == "pair":
        good = st.floats(min_value=0.1, max_value=0.9)
        return st.one_of(st.tuples(bad, good), st.tuples(good, bad)).map(list)
    return bad.map(lambda number: _shaped(option, number))
