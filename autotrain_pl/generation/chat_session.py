"""``ChatSession``: a multi-turn conversation with history, a context budget and save/load.

The full history is kept (and saved); what is sent to the model is the system prompt plus the
newest turns that fit ``max_context_tokens`` together with room for the reply
(``sampling.max_new_tokens``). Whole user/assistant turns are dropped oldest first, so the window
always starts with a user message and the system prompt is never dropped.

``create_chat_session("builtin:tiny").chat("Hello!")`` loads a model (``create_completer``) and
starts a session with the model's context length as the budget.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation.message_completer import MessageCompleter
from autotrain_pl.generation.sampling import SamplingConfig
from autotrain_pl.rendering.messages import Message, MessageLike, as_messages

SESSION_FORMAT_VERSION = 1


class ChatSession:
    """Keeps a conversation and asks a ``MessageCompleter`` for each reply.

    Args:
        completer: samples the replies.
        system_prompt: optional system message, always first in the context.
        max_context_tokens: budget for prompt plus reply; None means unlimited.
        sampling: decoding options for every reply (default: ``SamplingConfig()``).
        history: earlier user/assistant turns to continue from (``Message``s or
            ``{"role", "content"}`` dicts), without the system prompt.
    """

    def __init__(
        self,
        completer: MessageCompleter,
        system_prompt: str | None = None,
        max_context_tokens: int | None = None,
        sampling: SamplingConfig | None = None,
        history: Sequence[MessageLike] = (),
    ) -> None:
        if max_context_tokens is not None and max_context_tokens < 1:
            raise AutotrainError(f"max_context_tokens={max_context_tokens} must be >= 1 or None")
        self.completer = completer
        self.system_prompt = system_prompt
        self.max_context_tokens = max_context_tokens
        self.sampling = sampling or SamplingConfig()
        self.history: list[Message] = as_messages(history)

    @property
    def messages(self) -> list[Message]:
        """The whole conversation, system prompt first."""
        system = [Message("system", self.system_prompt)] if self.system_prompt else []
        return system + list(self.history)

    def send(self, text: str, sampling: SamplingConfig | None = None) -> Message:
        """Add a user message, sample the reply, record it and return it."""
        sampling = sampling or self.sampling
        context = self._context_with(Message("user", text), sampling)
        reply = self.completer(context, sampling)
        self.history += [Message("user", text), reply]
        return reply

    def chat(self, text: str, sampling: SamplingConfig | None = None) -> str:
        """Say ``text``; the reply's text (``send`` returns the whole ``Message``)."""
        return self.send(text, sampling).content

    def stream(self, text: str, sampling: SamplingConfig | None = None) -> Iterator[str]:
        """Like ``send`` but yields the reply as text chunks; records it when done."""
        sampling = sampling or self.sampling
        context = self._context_with(Message("user", text), sampling)
        reply = yield from self.completer.stream_messages(context, sampling)
        self.history += [Message("user", text), reply]
        return reply

    def reset(self) -> None:
        """Forget the conversation (the system prompt stays)."""
        self.history = []

    def context_messages(self, sampling: SamplingConfig | None = None) -> list[Message]:
        """What the next prompt would contain before the next user message (for inspection)."""
        return self._fit(self.history, sampling or self.sampling, require_last=False)

    # -- context budget -------------------------------------------------------------------------
    def _context_with(self, user: Message, sampling: SamplingConfig) -> list[Message]:
        return self._fit([*self.history, user], sampling, require_last=True)

    def _fit(self, turns: list[Message], sampling: SamplingConfig, require_last: bool) -> list[Message]:
        system = [Message("system", self.system_prompt)] if self.system_prompt else []
        if self.max_context_tokens is None:
            return system + turns
        budget = self.max_context_tokens - sampling.max_new_tokens
        starts = [i for i, m in enumerate(turns) if m.role == "user"] or [len(turns)]
        for start in starts:  # oldest turns go first
            window = system + turns[start:]
            if len(self.completer.build_prompt(window)) <= budget:
                return window
        if require_last:
            raise AutotrainError(
                f"max_context_tokens={self.max_context_tokens} cannot hold the system prompt, the "
                f"latest message and max_new_tokens={sampling.max_new_tokens}; raise "
                "max_context_tokens, lower max_new_tokens or shorten the message"
            )
        return system

    # -- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "version": SESSION_FORMAT_VERSION,
            "system_prompt": self.system_prompt,
            "max_context_tokens": self.max_context_tokens,
            "messages": [m.to_dict() for m in self.history],
        }

    def save(self, path: str | Path) -> Path:
        """Write the session as JSON (system prompt, budget and full history)."""
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path

    def load(self, path: str | Path) -> None:
        """Replace this session's system prompt, budget and history with a saved one."""
        path = Path(path).expanduser()
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise AutotrainError(f"chat session file {path} does not exist; check the path") from None
        except (OSError, json.JSONDecodeError) as error:
            raise AutotrainError(f"chat session file {path} is not valid JSON: {error}") from None
        if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
            raise AutotrainError(f"chat session file {path} needs a 'messages' list; was it saved by ChatSession.save?")
        history = []
        for index, item in enumerate(data["messages"]):
            if not isinstance(item, dict) or not isinstance(item.get("content"), str) or \
                    item.get("role") not in ("user", "assistant", "tool"):
                raise AutotrainError(
                    f"chat session file {path}: message {index} needs a role (user, assistant or "
                    "tool) and string content"
                )
            history.append(Message.from_dict(item))
        self.system_prompt = data.get("system_prompt")
        self.max_context_tokens = data.get("max_context_tokens", self.max_context_tokens)
        self.history = history


def create_chat_session(
    model_ref: str,
    *,
    system_prompt: str | None = None,
    chat_format: str | None = None,
    sampling: SamplingConfig | None = None,
    max_context_tokens: int | None = None,
    dtype: str = "float32",
    device: str | None = None,
    **load_options,
) -> ChatSession:
    """Load ``model_ref`` for chat and start a ``ChatSession``: ``session.chat("Hello!")``.

    Args:
        model_ref: ``builtin:<name>``, a local HF directory, an exported run, or a hub id.
        system_prompt: optional system message, always first in the context.
        chat_format: renderer when the export records none (``create_completer``).
        sampling: decoding options for every reply (default: ``SamplingConfig()``).
        max_context_tokens: prompt plus reply budget; None: the model's context length
            (``max_position_embeddings``), so a long chat drops its oldest turns instead of
            failing.
        dtype, device, **load_options: as for ``create_completer``.
    """
    from autotrain_pl.generation.factory import create_completer

    completer = create_completer(model_ref, kind="message", chat_format=chat_format,
                                 dtype=dtype, device=device, **load_options)
    if max_context_tokens is None:
        max_context_tokens = getattr(completer.model.config, "max_position_embeddings", None)
    return ChatSession(completer, system_prompt=system_prompt,
                       max_context_tokens=max_context_tokens, sampling=sampling)
