"""What a command line means as a whole: the trainer and which switches are on, and each flag's
value as given or as the guide's default where it applies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.llm.argv import ParsedArgs
from autotrain_pl.llm.flags import BY_NAME
from autotrain_pl.llm.spec import MANUAL_OPTIMIZATION, Flag


@dataclass(frozen=True)
class Context:
    """The trainer and the switches (``peft``, ``use-distillation``, ...) that are on."""

    trainer: str
    switches: frozenset[str]
    args: ParsedArgs

    @classmethod
    def of(cls, args: ParsedArgs) -> Context:
        trainer = args.value("trainer", BY_NAME["trainer"].default)
        on = {name for name in ("peft", "use-sweep", "inference-mode", "use-enhanced-eval",
                                "use-distillation") if args.value(name)}
        if trainer == "distillation":
            if args.value("use-distillation") is False:
                raise AutotrainError("--trainer distillation distils; remove "
                                     "--use-distillation false (or use --trainer sft)")
            on.add("use-distillation")
        if args.given("custom-metrics"):
            if args.value("use-enhanced-eval") is False:
                raise AutotrainError("--custom-metrics are computed by the enhanced evaluation; "
                                     "remove --use-enhanced-eval false")
            on.add("use-enhanced-eval")
        return cls(trainer, frozenset(on), args)

    def on(self, switch: str) -> bool:
        return switch in self.switches

    @property
    def manual_optimization(self) -> bool:
        """PPO and GRPO step their optimizer themselves (several updates per batch)."""
        return self.trainer in MANUAL_OPTIMIZATION

    def default_applies(self, flag: Flag) -> bool:
        """Whether the guide's default of ``flag`` takes effect in this run: the flag applies to
        the trainer and its switch is on. The PPO/RL defaults are the guide's PPO values, so they
        apply to PPO only (GRPO keeps ours)."""
        if flag.default is None or not flag.applies_to(self.trainer):
            return False
        if flag.needs and not self.on(flag.needs):
            return False
        return not (flag.group == "PPO/RL" and self.trainer != "ppo")

    def setting(self, name: str) -> Any:
        """The value of ``--name``: as given, else the guide's default where it applies."""
        if self.args.given(name):
            return self.args.value(name)
        flag = BY_NAME[name]
        return flag.default if self.default_applies(flag) else None

    def given(self, name: str) -> bool:
        return self.args.given(name)
