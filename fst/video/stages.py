"""Two threads around the main one, so decoding and encoding overlap the networks.

PyTorch and FFmpeg release the GIL while they compute, so on a 2-core machine the
network runs on one core while the frames before it are decoded (and their motion
estimated) and the frames after it are blended and encoded on the other. Queues are
bounded (memory stays bounded for any length) and errors raised in a thread are
raised again in the main thread; :meth:`close` stops a thread without waiting for
its queue to drain (failure, KeyboardInterrupt).
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterable, Iterator

POLL_SECONDS = 0.1
JOIN_SECONDS = 30.0


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


_DONE = object()


def _put(box: "queue.Queue[Any]", item: Any, stop: threading.Event) -> bool:
    """Put ``item``, waiting while the queue is full; False when ``stop`` is set meanwhile."""
    while not stop.is_set():
        try:
            box.put(item, timeout=POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


class ReadAhead:
    """Iterates ``make()`` in a thread, up to ``ahead`` items in advance.

    >>> with ReadAhead(lambda: decode_frames(path)) as frames:
    ...     for frame in frames: ...
    """

    def __init__(self, make: Callable[[], Iterable[Any]], *, ahead: int = 4, name: str = "fst-read"):
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(make,), name=name, daemon=True)
        self._thread.start()

    def _run(self, make: Callable[[], Iterable[Any]]) -> None:
        items = None
        try:
            items = iter(make())
            for item in items:
                if not _put(self._queue, item, self._stop):
                    return
            _put(self._queue, _DONE, self._stop)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            _put(self._queue, _Failure(error), self._stop)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                item = self._queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError(f"{self._thread.name} stopped without finishing") from None
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop the thread and wait for it (it finishes the item in hand)."""
        self._stop.set()
        self._thread.join(JOIN_SECONDS)

    def __enter__(self) -> "ReadAhead":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class WriteBehind:
    """Calls ``handle(item)`` in a thread for every item :meth:`put`, in order.

    :meth:`finish` waits for the queue to drain and raises the thread's error, if any;
    :meth:`close` stops it without draining.
    """

    def __init__(self, handle: Callable[[Any], None], *, behind: int = 4, name: str = "fst-write"):
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=behind)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(handle,), name=name, daemon=True)
        self._thread.start()

    def _run(self, handle: Callable[[Any], None]) -> None:
        try:
            while not self._stop.is_set():
                try:
                    item = self._queue.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    continue
                if item is _DONE:
                    return
                handle(item)
        except BaseException as error:  # noqa: BLE001 - raised again by put/finish in the main thread
            self._error = error
            self._stop.set()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: Any) -> None:
        """Queue ``item`` (waits while the queue is full); raises the thread's error if it failed."""
        self._raise_error()
        if not _put(self._queue, item, self._stop):
            self._raise_error()
            raise RuntimeError(f"{self._thread.name} was stopped")

    def finish(self) -> None:
        """Wait until every item is handled; raises the thread's error, if any."""
        self.put(_DONE)
        self._thread.join()
        self._raise_error()

    def close(self) -> None:
        """Stop the thread (it finishes the item in hand) and wait for it."""
        self._stop.set()
        self._thread.join(JOIN_SECONDS)


__all__ = ["ReadAhead", "WriteBehind"]
