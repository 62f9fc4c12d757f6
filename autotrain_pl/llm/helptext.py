"""``aitrain llm --help``: the flags grouped as the guide groups them, each with what it
becomes here (``--preview-trainer dpo --help`` lists the flags of one trainer)."""

from __future__ import annotations

from autotrain_pl.llm.flags import FLAGS
from autotrain_pl.llm.spec import Flag


def status(flag: Flag) -> str:
    """What the flag becomes here, in a few words (also the README table's second column)."""
    if _not_here(flag):
        return f"not supported: {flag.refused}"
    target = flag.maps_to or _key_text(flag)
    if flag.refused:
        allowed = ", ".join(_word(v) for v in flag.noop)
        return f"{target}; other values not supported: {flag.refused}" if target else \
            f"{allowed} only; other values not supported: {flag.refused}"
    return target


def _not_here(flag: Flag) -> bool:
    """A refused flag whose accepted values (if any) only turn its feature off; one with a
    ``maps_to`` accepts the values that describe what we do."""
    return flag.refused is not None and not flag.maps_to


def _key_text(flag: Flag, code: bool = False) -> str:
    """The flag's config key(s), per trainer where they differ."""
    quote = "`" if code else ""
    if isinstance(flag.key, dict):
        trainers: dict[str, list[str]] = {}
        for trainer, key in flag.key.items():
            trainers.setdefault(key, []).append(trainer)
        if len(trainers) == 1:
            return f"{quote}{next(iter(trainers))}{quote}"
        return "; ".join(f"{quote}{key}{quote} ({'/'.join(names)})"
                         for key, names in trainers.items())
    return f"{quote}{flag.key}{quote}" if flag.key else ""


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


def table_cell(flag: Flag) -> str:
    """The README table's answer for ``flag``: ``same name: `key```, ``ours: ...`` or
    ``not supported: why``."""
    if _not_here(flag):
        off = ", ".join(f"`{_word(value)}`" for value in flag.noop)
        accepted = f" ({off} is accepted: it asks for nothing)" if flag.noop else ""
        return f"not supported: {flag.refused}{accepted}"
    key = _key_text(flag)
    if key and flag.convert is None and not flag.maps_to and key.rsplit(".", 1)[-1] == flag.attr:
        return f"same name: `{key}`"
    target = flag.maps_to or _key_text(flag, code=True)
    if flag.refused:
        return f"ours: {target} (other values are refused: {flag.refused})"
    return f"ours: {target}"


def table_rows() -> list[str]:
    """One markdown row per flag, as the README's "Coming from aitraining" table lists them."""
    rows = []
    for flag in FLAGS:
        names = " ".join(f"`--{name}`" for name in (flag.name, *flag.aliases))
        default = "" if flag.default is None else f"`{_word(flag.default)}`"
        mark = " (ours)" if flag.ours else ""
        rows.append(f"| {names}{mark} | {default} | {table_cell(flag).replace('|', '/')} |")
    return rows
