"""Chat rendering: messages to token ids and per-token loss weights, one chat format per class.

``get_renderer(chat_format, tokenizer)`` builds a renderer by registered name (see
``available_formats()``) or by import path; see ``base`` for the contract every format keeps.
"""

from autotrain_pl.rendering.base import (
    MessageText,
    RenderedConversation,
    Renderer,
    SupervisedExample,
)
from autotrain_pl.rendering.chatml import ChatMLRenderer
from autotrain_pl.rendering.llama import Llama2Renderer, Llama3Renderer, MistralRenderer
from autotrain_pl.rendering.messages import (
    Conversation,
    Message,
    MessageLike,
    Preference,
    ToolCall,
    TrainOnWhat,
    UnpairedPreference,
    as_messages,
)
from autotrain_pl.rendering.native import AutoRenderer, NativeRenderer
from autotrain_pl.rendering.registry import (
    add_missing_special_tokens,
    available_formats,
    get_renderer,
    register_renderer,
    renderer_class,
)
from autotrain_pl.rendering.simple import AlpacaRenderer, VicunaRenderer
from autotrain_pl.rendering.tools import ToolLike
from autotrain_pl.rendering.zephyr import ZephyrRenderer

__all__ = [
    "AlpacaRenderer",
    "AutoRenderer",
    "ChatMLRenderer",
    "Conversation",
    "Llama2Renderer",
    "Llama3Renderer",
    "Message",
    "MessageLike",
    "MessageText",
    "MistralRenderer",
    "NativeRenderer",
    "Preference",
    "UnpairedPreference",
    "RenderedConversation",
    "Renderer",
    "SupervisedExample",
    "ToolCall",
    "ToolLike",
    "TrainOnWhat",
    "VicunaRenderer",
    "ZephyrRenderer",
    "add_missing_special_tokens",
    "as_messages",
    "available_formats",
    "get_renderer",
    "register_renderer",
    "renderer_class",
]
