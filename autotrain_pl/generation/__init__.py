"""Sampling from models: completers (token and message, sync and async), streaming, chat."""

from autotrain_pl.generation.async_completers import AsyncMessageCompleter, AsyncTokenCompleter
from autotrain_pl.generation.batcher import RequestBatcher
from autotrain_pl.generation.chat_session import ChatSession, create_chat_session
from autotrain_pl.generation.factory import create_completer
from autotrain_pl.generation.message_completer import MessageCompleter, stream_messages
from autotrain_pl.generation.sampling import SamplingConfig
from autotrain_pl.generation.stopping import StopReason
from autotrain_pl.generation.token_completer import (
    TokenCompleter,
    TokenCompletion,
    stream_tokens,
)

__all__ = [
    "AsyncMessageCompleter", "AsyncTokenCompleter", "ChatSession", "MessageCompleter",
    "RequestBatcher", "SamplingConfig", "StopReason", "TokenCompleter", "TokenCompletion",
    "create_chat_session", "create_completer", "stream_messages", "stream_tokens",
]
