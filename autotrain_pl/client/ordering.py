"""One worker thread that runs a client's calls one at a time, in the order they were made."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class OrderedWorker:
    """FIFO execution on a single lazily started thread.

    ``submit`` queues a call and returns its ``Future``. ``run`` executes a call now when nothing
    was ever queued, and otherwise queues it behind the earlier calls and waits, so synchronous
    and asynchronous calls keep their program order. Calls made from the worker thread itself
    (e.g. inside a queued function) run inline instead of deadlocking.
    """

    def __init__(self, name: str = "autotrain-client") -> None:
        self.name = name
        self._executor: ThreadPoolExecutor | None = None
        self._thread_ident: int | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=self.name, initializer=self._mark)
            return self._executor.submit(fn, *args, **kwargs)

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._executor is None or threading.get_ident() == self._thread_ident:
            return fn(*args, **kwargs)
        return self.submit(fn, *args, **kwargs).result()

    def close(self) -> None:
        """Finish the queued calls and stop the thread (a later ``submit`` starts a new one)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _mark(self) -> None:
        self._thread_ident = threading.get_ident()
