"""``aitrain generate`` and ``aitrain chat``: entry functions the main CLI dispatches to.

Both take an argv list and return an exit code; a user error (``AutotrainError``) prints one line
to stderr and returns 2, as everywhere in the CLI.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from autotrain_pl.commands import SUBCOMMANDS
from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation.message_completer import MessageCompleter
from autotrain_pl.generation.sampling import SamplingConfig
from autotrain_pl.rendering.messages import as_messages

#: SamplingConfig fields settable from the command line, with their argparse types.
SAMPLING_FLAGS: dict[str, type] = {
    "max_new_tokens": int, "min_new_tokens": int, "temperature": float, "top_k": int,
    "top_p": float, "min_p": float, "typical_p": float, "repetition_penalty": float,
    "num_beams": int, "num_return_sequences": int, "seed": int,
}
CHAT_HELP = "commands: /reset  /save PATH  /load PATH  /exit  (Ctrl-D also exits)"


# -- aitrain generate ------------------------------------------------------------------------------
@SUBCOMMANDS.register("generate")
def generate_command(argv: Sequence[str], stdin: IO[str] | None = None) -> int:
    """Complete prompts from arguments, a file or stdin; write one JSONL record per completion."""
    parser = argparse.ArgumentParser(
        prog="aitrain generate",
        description="Sample completions; writes JSONL records with prompt, completion, "
        "stop_reason, num_tokens and tokens_per_s.",
    )
    _add_model_arguments(parser)
    parser.add_argument("prompts", nargs="*", help="prompts (default: --prompts_file, else stdin)")
    parser.add_argument("--prompts_file", help="JSONL with 'prompt' or 'messages' per line, or "
                        "plain text with one prompt per line")
    parser.add_argument("--raw", action=argparse.BooleanOptionalAction, default=False,
                        help="send prompt strings as plain text instead of as a user message")
    parser.add_argument("--system", help="system prompt before each plain-text prompt (prompts "
                        "given as messages keep their own)")
    parser.add_argument("--batch_size", type=int, default=8, help="prompts per generate call")
    parser.add_argument("--output", default="-", help="JSONL output path (default: stdout)")
    _add_sampling_arguments(parser)
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    try:
        if args.raw and args.system:
            raise AutotrainError("--system applies to chat prompts; with --raw, write the system "
                                 "text into the prompt itself")
        sampling = sampling_from_args(args)
        prompts = _collect_prompts(args, stdin if stdin is not None else sys.stdin)
        completer = _load(args)
        with _open_output(args.output) as output:
            for record in _generate_records(completer, prompts, sampling, args):
                output.write(json.dumps(record, ensure_ascii=False) + "\n")
                output.flush()
    except AutotrainError as error:
        return _fail(error)
    return 0


def _generate_records(completer: MessageCompleter, prompts: list[Any], sampling: SamplingConfig,
                      args: argparse.Namespace) -> Iterable[dict]:
    tokenizer = completer.tokenizer
    per_prompt = sampling.num_return_sequences
    chunk = max(1, args.batch_size) * 8  # sort by length within chunks; write as we go
    for start in range(0, len(prompts), chunk):
        part = prompts[start : start + chunk]
        token_prompts = [
            tokenizer.encode(p) if isinstance(p, str) and args.raw
            else completer.build_prompt(_as_chat(p, args.system) if isinstance(p, str) else p)
            for p in part
        ]
        completions = completer.token_completer.batch_complete(
            token_prompts, sampling, batch_size=args.batch_size
        )
        for offset, completion in enumerate(completions):
            prompt = part[offset // per_prompt]
            if isinstance(prompt, str) and args.raw:
                text = completion.text
            else:
                text = completer.to_message(completion).content
                prompt = prompt if isinstance(prompt, str) else [m.to_dict() for m in prompt]
            yield {
                "index": start + offset // per_prompt,
                "prompt": prompt,
                "completion": text,
                "stop_reason": completion.stop_reason,
                "num_tokens": completion.num_tokens,
                "tokens_per_s": round(completion.num_tokens / max(completion.elapsed_s, 1e-9), 2),
            }


def _as_chat(prompt: str, system: str | None) -> list[dict[str, str]]:
    system_message = [{"role": "system", "content": system}] if system else []
    return [*system_message, {"role": "user", "content": prompt}]


def _collect_prompts(args: argparse.Namespace, stdin: IO[str]) -> list[Any]:
    if args.prompts and args.prompts_file:
        raise AutotrainError("give prompts as arguments or with --prompts_file, not both")
    if args.prompts:
        return list(args.prompts)
    if args.prompts_file:
        path = Path(args.prompts_file).expanduser()
        if not path.is_file():
            raise AutotrainError(f"--prompts_file {path} does not exist; check the path")
        text = path.read_text()
        if path.suffix == ".json":
            return _prompts_from_json(text, str(path))
        return parse_prompt_lines(text.splitlines(), str(path), jsonl=path.suffix == ".jsonl")
    prompts = parse_prompt_lines(stdin.read().splitlines(), "stdin", jsonl=False)
    if not prompts:
        raise AutotrainError("no prompts given; pass them as arguments, --prompts_file or on stdin")
    return prompts


def parse_prompt_lines(lines: Iterable[str], source: str, jsonl: bool) -> list[Any]:
    """One prompt per non-empty line: a JSON object with ``prompt``/``messages``, or plain text."""
    prompts: list[Any] = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        record = None
        if line.startswith("{") or jsonl:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if jsonl:
                    raise AutotrainError(f"{source} line {number} is not valid JSON") from None
        prompts.append(line if record is None else _prompt_from_record(record, f"{source} line {number}"))
    if not prompts:
        raise AutotrainError(f"{source} holds no prompts")
    return prompts


def _prompts_from_json(text: str, source: str) -> list[Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise AutotrainError(f"{source} is not valid JSON: {error}") from None
    if not isinstance(data, list) or not data:
        raise AutotrainError(f"{source} must hold a non-empty JSON list of prompt records")
    return [_prompt_from_record(r, f"{source} item {i}") for i, r in enumerate(data)]


def _prompt_from_record(record: Any, where: str) -> Any:
    if isinstance(record, str):
        return record
    if isinstance(record, dict) and "messages" in record:
        try:
            return as_messages(record["messages"])
        except AutotrainError as error:
            raise AutotrainError(f"{where}: {error}") from None
    if isinstance(record, dict) and isinstance(record.get("prompt"), str):
        return record["prompt"]
    raise AutotrainError(f"{where} needs a 'prompt' string or a 'messages' list")


# -- aitrain chat ----------------------------------------------------------------------------------
@SUBCOMMANDS.register("chat")
def chat_command(argv: Sequence[str], stdin: IO[str] | None = None,
                 stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """Interactive streaming chat; reads user lines from ``stdin`` until ``/exit`` or EOF.

    The streams default to ``sys.stdin``/``sys.stdout``/``sys.stderr`` as they are at call time.
    """
    from autotrain_pl.generation.chat_session import ChatSession

    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    parser = argparse.ArgumentParser(prog="aitrain chat", description="Chat with a model. " + CHAT_HELP)
    _add_model_arguments(parser)
    parser.add_argument("--system", help="system prompt")
    parser.add_argument("--max_context_tokens", type=int,
                        help="drop the oldest turns so prompt plus reply fit this many tokens")
    _add_sampling_arguments(parser)
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    try:
        sampling = sampling_from_args(args)
        session = ChatSession(_load(args), system_prompt=args.system,
                              max_context_tokens=args.max_context_tokens, sampling=sampling)
    except AutotrainError as error:
        return _fail(error, stderr)
    interactive = _isatty(stdin)
    if interactive:
        stdout.write(f"chatting with {args.model}; {CHAT_HELP}\n")
    while True:
        if interactive:
            stdout.write(">>> ")
            stdout.flush()
        try:
            line = stdin.readline()
        except KeyboardInterrupt:
            stdout.write("\n")
            break
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        try:
            if text.startswith("/"):
                if _run_chat_command(session, text, stdout) == "exit":
                    break
                continue
            stream = session.stream(text)
            try:
                for chunk in stream:
                    stdout.write(chunk)
                    stdout.flush()
            except KeyboardInterrupt:
                stream.close()  # stops generation; the turn is not recorded
            stdout.write("\n")
            stdout.flush()
        except AutotrainError as error:
            _fail(error, stderr)
    return 0


def _run_chat_command(session, text: str, stdout: IO[str]) -> str | None:
    command, _, argument = text.partition(" ")
    argument = argument.strip()
    if command in ("/exit", "/quit"):
        return "exit"
    if command == "/reset":
        session.reset()
        stdout.write("[history cleared]\n")
    elif command in ("/save", "/load"):
        if not argument:
            raise AutotrainError(f"{command} needs a path, e.g. {command} chat.json")
        if command == "/save":
            stdout.write(f"[saved to {session.save(argument)}]\n")
        else:
            session.load(argument)
            stdout.write(f"[loaded {len(session.history)} messages from {argument}]\n")
    else:
        stdout.write(f"[unknown command {command}; {CHAT_HELP}]\n")
    stdout.flush()
    return None


# -- shared helpers --------------------------------------------------------------------------------
def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="builtin:<name>, a model dir, an exported "
                        "run, or a hub id")
    parser.add_argument("--chat_format", help="chat format when the model does not record one")
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16, float16 or auto")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")


def _add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sampling")
    for name, kind in SAMPLING_FLAGS.items():
        group.add_argument(f"--{name}", type=kind, default=None)
    group.add_argument("--stop", action="append", default=[],
                       help="stop string (repeatable; \\n and \\t are unescaped)")
    group.add_argument("--stop_token_id", action="append", type=int, default=[],
                       help="stop token id (repeatable)")


def sampling_from_args(args: argparse.Namespace) -> SamplingConfig:
    """Build a ``SamplingConfig`` from parsed flags; unset flags keep the defaults."""
    options = {n: getattr(args, n) for n in SAMPLING_FLAGS if getattr(args, n) is not None}
    stop = [_unescape(s) for s in args.stop] + list(args.stop_token_id)
    return SamplingConfig(**options, stop=tuple(stop))


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _load(args: argparse.Namespace) -> MessageCompleter:
    from autotrain_pl.generation.factory import create_completer

    return create_completer(args.model, kind="message", chat_format=args.chat_format,
                            dtype=args.dtype, device=args.device)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exit_:  # --help or a usage error: argparse already printed it
        return exit_.code if isinstance(exit_.code, int) else 2


def _fail(error: AutotrainError, stderr: IO[str] | None = None) -> int:
    message = " ".join(str(error).split())
    print(f"aitrain: error: {message}", file=stderr or sys.stderr)
    return 2


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _open_output:
    """stdout for ``-``, else a file created with its parent folders."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.handle: IO[str] | None = None

    def __enter__(self) -> IO[str]:
        if self.target == "-":
            return sys.stdout
        path = Path(self.target).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = path.open("w")
        return self.handle

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.handle.close()
