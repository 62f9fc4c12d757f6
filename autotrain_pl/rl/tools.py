"""Tools for tool-use environments: plain Python functions the model calls, run so that a bad
call never stops training.

A tool is a function with type hints and a Google-style docstring (its JSON schema comes from
``transformers``' ``get_json_schema``, as ``apply_chat_template(tools=...)`` makes it), named in
``rl_env_options: {tools: [calculator, my_pkg.tools.search]}``: a built-in name or an import path.
``ToolBox.call`` runs one parsed call and always returns text for a ``tool`` message: an unknown
tool, arguments that do not fit, an exception or a timeout come back as an error the model reads.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from autotrain_pl.arithmetic import calculator
from autotrain_pl.errors import AutotrainError
from autotrain_pl.registry import Registry
from autotrain_pl.rendering.messages import ToolCall
from autotrain_pl.rendering.tools import as_tool_schemas, to_json

TOOLS: Registry[Callable[..., Any]] = Registry(
    kind="tool", field="model.rl_env_options.tools", example="my_pkg.tools.search",
    accepts=callable, expects="a function",
)

TOOLS.register("calculator")(calculator)


@dataclass(frozen=True)
class ToolResult:
    """What a call returned, as the text of a ``tool`` message; ``error`` when it failed."""

    content: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class ToolBox:
    """An environment's tools by name, their JSON schemas, and a call that cannot crash.

    Args:
        tools: built-in tool names, import paths or functions.
        timeout: seconds a call may run before the model is told it timed out. Python cannot
            stop a thread, so a call that never returns keeps its worker thread; the episode
            goes on without it.
    """

    def __init__(self, tools: Sequence[str | Callable[..., Any]], timeout: float = 10.0) -> None:
        if isinstance(tools, str) or not tools:
            raise AutotrainError(f"model.rl_env_options.tools={tools!r}: give a list of tools, "
                                 "e.g. [calculator] or [my_pkg.tools.search]")
        if not timeout > 0:
            raise AutotrainError(f"model.rl_env_options.tool_timeout={timeout!r} must be > 0 "
                                 "seconds")
        functions = [TOOLS.get(tool) if isinstance(tool, str) else tool for tool in tools]
        self.schemas: list[dict[str, Any]] = as_tool_schemas(functions) or []
        self.functions = {schema["function"]["name"]: function
                          for schema, function in zip(self.schemas, functions, strict=True)}
        self.timeout = float(timeout)

    def call(self, call: ToolCall) -> ToolResult:
        function = self.functions.get(call.name)
        if function is None:
            return ToolResult(f"Error: there is no tool {call.name!r}; the tools are "
                              f"{', '.join(self.functions)}.", "unknown tool")
        try:
            inspect.signature(function).bind(**call.arguments)
        except TypeError as err:
            return ToolResult(f"Error: wrong arguments for {call.name}: {err}.", "bad arguments")
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"tool-{call.name}")
        try:
            value = executor.submit(function, **call.arguments).result(timeout=self.timeout)
        except FutureTimeout:
            return ToolResult(f"Error: {call.name} timed out after {self.timeout:g} s.",
                              "timeout")
        except Exception as err:  # noqa: BLE001 - the model hears about it; the run goes on
            return ToolResult(f"Error: {call.name} failed: {type(err).__name__}: {err}",
                              "raised")
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
        return ToolResult(value if isinstance(value, str) else _as_text(value))


def _as_text(value: Any) -> str:
    try:
        return to_json(value)
    except (TypeError, ValueError):
        return str(value)


__all__ = ["TOOLS", "ToolBox", "ToolResult", "calculator"]
