"""A least-recently-used cache bounded in bytes, not entries: what a worker keeps between rows must not
grow with the size of the results it has seen."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import wraps
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
V = TypeVar("V")


class ByteBoundedCache(Generic[V]):
    """Values keyed by hashable keys, evicted oldest-first once their total size passes ``max_bytes``.
    A value larger than the whole budget is never kept."""

    def __init__(self, max_bytes: int, size_of: Callable[[V], int]) -> None:
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self.bytes = 0

    def get(self, key: Hashable) -> tuple[V] | None:
        """``(value,)`` when cached (the value may itself be None), else None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return (entry[0],)

    def put(self, key: Hashable, value: V) -> None:
        size = self._size_of(value)
        if key in self._entries or size > self.max_bytes:
            return
        self._entries[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.bytes -= dropped

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0


def bytes_cached(max_bytes: int, size_of: Callable[[Any], int]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: memoize a function of hashable positional arguments in a :class:`ByteBoundedCache`
    (``cache_clear()`` and ``cache`` on the wrapper, like ``functools.lru_cache``)."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        cache: ByteBoundedCache[R] = ByteBoundedCache(max_bytes, size_of)

        @wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            key = (args, tuple(sorted(kwargs.items())))
            found = cache.get(key)
            if found is not None:
                return found[0]
            value = function(*args, **kwargs)
            cache.put(key, value)
            return value

        wrapper.cache = cache  # type: ignore[attr-defined]
        wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
        return wrapper

    return decorate
