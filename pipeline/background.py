"""A background writer: file writes in order in a thread, so training only hands them over.

`CheckpointForViz` submits each epoch's writes here; at most `pending` wait,
so a slow disk makes training wait rather than memory grow.
"""

from __future__ import annotations

import atexit
import queue
import threading
import weakref

__all__ = ["Writer"]


class Writer:
    """Run file writes in order, in a background thread or (background=False) at once.

    The thread starts when a write is submitted and ends when none is left, so
    a `fit` that fails (Keras then skips `on_train_end`) leaves no thread
    waiting behind it; it is a daemon, and interpreter exit waits a while for
    the writes still queued.
    """

    def __init__(self, *, background: bool = True, pending: int = 2):
        self.background = background
        self._queue = queue.Queue(maxsize=pending)
        self._lock = threading.Lock()
        self._thread = None
        self._error = None
        _WRITERS.add(self)

    def submit(self, fn, *args, **kwargs) -> None:
        """Run `fn(*args, **kwargs)` (after the writes before it); first raise an earlier write's error."""
        self.raise_error()
        if not self.background:
            fn(*args, **kwargs)
            return
        self._queue.put((fn, args, kwargs))  # blocks while `pending` writes wait: bounded memory
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="vaeviz-writer", daemon=True)
                self._thread.start()

    def flush(self, timeout=None) -> None:
        """Wait until every submitted write is done; raise the first error among them."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self.raise_error()

    def raise_error(self) -> None:
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error

    def _work(self) -> None:
        while True:
            with self._lock:
                try:
                    fn, args, kwargs = self._queue.get_nowait()
                except queue.Empty:
                    self._thread = None
                    return
            try:
                if self._error is None:  # after a failure, skip the rest: the fit is stopping
                    fn(*args, **kwargs)
            except BaseException as err:  # noqa: BLE001 - handed to the training thread
                with self._lock:
                    self._error = err


_WRITERS = weakref.WeakSet()


@atexit.register
def _finish_writes(timeout: float = 60.0) -> None:
    """At exit (say after a failed fit), give the queued checkpoints time to reach the disk."""
    for writer in list(_WRITERS):
        try:
            writer.flush(timeout)
        except BaseException:  # noqa: BLE001 - nobody is left to tell
            pass
