"""A background writer: file writes in order in a thread, so training only hands them over.

`CheckpointForViz` submits each epoch's writes here. The training thread never
waits on the writer without a time limit: at most `pending` writes wait in the
queue, and a write that cannot be queued within `timeout` seconds (a disk or
network filesystem that stopped answering) is dropped and reported as failed.
A write that fails is reported too (`failures()`), or, with `strict`, raised
in the training thread at its next submit or flush.
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

    def __init__(self, *, background: bool = True, strict: bool = False, pending: int = 2,
                 timeout: float = 60.0):
        self.background, self.strict, self.timeout = background, strict, timeout
        self._queue = queue.Queue(maxsize=pending)
        self._lock = threading.Lock()
        self._thread = None
        self._error = None  # strict: the first failure, raised in the training thread
        self._failures: list[tuple[str, BaseException]] = []
        _WRITERS.add(self)

    def submit(self, fn, *args, label: str = "a write", **kwargs) -> bool:
        """Run `fn(*args, **kwargs)` after the writes before it; return False if it was dropped.

        `label` names the write in failure reports. Strict: first raise an earlier write's error.
        """
        self.raise_error()
        if not self.background:
            self._run(label, fn, args, kwargs)
            self.raise_error()
            return True
        try:
            self._queue.put((label, fn, args, kwargs), timeout=self.timeout)  # bounded memory, bounded wait
        except queue.Full:
            self._fail(label, TimeoutError(f"the writes before it did not finish within {self.timeout:g} s "
                                           f"(a filesystem that stopped answering?)"))
            self.raise_error()
            return False
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="vaeviz-writer", daemon=True)
                self._thread.start()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait up to `timeout` seconds (default: the writer's; math.inf: until done) for every submitted
        write; return whether all are done. Strict: raise the first error among them."""
        timeout = self.timeout if timeout is None else timeout
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(None if timeout == float("inf") else timeout)
        self.raise_error()
        return thread is None or not thread.is_alive()

    def failures(self) -> list[tuple[str, BaseException]]:
        """Return the writes that failed since the last call, as (label, error), and forget them."""
        with self._lock:
            failed, self._failures = self._failures, []
        return failed

    def raise_error(self) -> None:
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error

    def _fail(self, label: str, err: BaseException) -> None:
        with self._lock:
            if self.strict:
                self._error = self._error or err
            else:
                self._failures.append((label, err))

    def _run(self, label, fn, args, kwargs) -> None:
        if self.strict and self._error is not None:
            return  # after a failure, skip the rest: the fit is stopping
        try:
            fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - reported to the training thread
            self._fail(label, err)

    def _work(self) -> None:
        while True:
            with self._lock:
                try:
                    label, fn, args, kwargs = self._queue.get_nowait()
                except queue.Empty:
                    self._thread = None
                    return
            self._run(label, fn, args, kwargs)


_WRITERS = weakref.WeakSet()


@atexit.register
def _finish_writes(timeout: float = 60.0) -> None:
    """At exit (say after a failed fit), give the queued checkpoints time to reach the disk."""
    for writer in list(_WRITERS):
        try:
            writer.flush(timeout)
        except BaseException:  # noqa: BLE001 - nobody is left to tell
            pass
