"""``aitrain llm --help``: the flags grouped as the guide groups them, each with what it
becomes here (``--preview-trainer dpo --help`` lists the flags of one trainer)."""

from __future__ import annotations

from autotrain_pl.llm.flags import FLAGS
from autotrain_pl.llm.spec import Flag


def status(flag: Flag) -> str:
    """What the flag becomes here, in a few words (also the README table's second column)."""
    if flag.refused and not flag.noop:
        return f"not supported: {flag.refused}"
    target = flag.maps_to or _key_text(flag)
    if flag.refused:
        allowed = ", ".join(_word(v) for v in flag.noop)
        return f"{target}; other values not supported: {flag.refused}" if target else \
            f"{allowed} only; other values not supported: {flag.refused}"
    return target


def _key_text(flag: Flag) -> str:
    if isinstance(flag.key, dict):
        pairs = sorted(flag.key.items())
        keys = sorted({key for _, key in pairs})
        if len(keys) == 1:
            return keys[0]
        return "; ".join(f"{key} ({trainer})" for trainer, key in pairs)
    return flag.key or ""


def _word(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def help_text(trainer: str | None = None) -> str:
    lines = [
        "usage: aitrain llm --model M --data-path D --project-name P [--trainer T] [flags]",
        "",
        "The flags of the aitraining guide's `aitraining llm`, translated into the config that "
        "`aitrain fit` runs (--print-config prints it). Booleans: --flag, --flag false, "
        "--no-flag.",
    ]
    if trainer:
        lines.append(f"Flags of --trainer {trainer}:")
    group = None
    for flag in FLAGS:
        if trainer and not flag.applies_to(trainer):
            continue
        if flag.group != group:
            group = flag.group
            lines += ["", f"{group}:"]
        default = "" if flag.default is None else f" (default {_word(flag.default)})"
        lines.append(f"  --{flag.name} {flag.kind.upper()}{default}: {status(flag)}")
    return "\n".join(lines)
