"""A bounded, thread-safe LRU cache that loads each key once (the first caller loads, the others wait)."""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Callable, Generic, Hashable, TypeVar



logger = logging.getLogger("fst.app")

T = TypeVar("T")



class ModelCache(Generic[T]):
    """A bounded LRU of loaded models, safe to share between request threads.

    ``get(key)`` loads a missing key once: concurrent callers of the same key wait
    for that single load (a future per key) instead of loading it again. Failed
    loads are not cached; every waiter sees the error.
    """

    def __init__(self, loader: Callable[[Hashable], T], max_items: int = 8):
        if max_items < 1:
            raise ValueError("max_items must be >= 1")
        self._loader = loader
        self.max_items = max_items
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._pending: dict[Hashable, Future] = {}
        self._lock = threading.Lock()
        self.loads = 0  # loader calls so far (for tests and logs)

    def get(self, key: Hashable) -> T:
        """The value for ``key``, loading it (once) when absent."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            future = self._pending.get(key)
            owner = future is None
            if owner:
                future = self._pending[key] = Future()
                self.loads += 1
        if not owner:
            return future.result()
        try:
            value = self._loader(key)
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            future.set_exception(exc)
            raise
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.max_items:
                evicted, _ = self._items.popitem(last=False)
                logger.info("model cache full: dropped %s", evicted)
            del self._pending[key]
        future.set_result(value)
        return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def keys(self) -> list[Hashable]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._items)
