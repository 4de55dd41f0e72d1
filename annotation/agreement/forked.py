"""Running a pure computation in a forked child process beside the caller's own work (part of
annotation.agreement; #21: the snapshot's independent sections on both cores).

``Forked(fn)`` forks: the child sees the caller's arrays copy-on-write (nothing is sent to it),
runs ``fn()``, sends the pickled result back through a pipe and ends with ``os._exit`` (no
clean-up of the inherited state: the database connection, the caller's threads and files are the
parent's alone). ``result()`` returns it, or raises what ``fn`` raised (the same exception type
and message, the child's traceback as a note). A child that ends without a result (killed, out of
memory) raises ``WorkerLost`` naming its exit status; nothing waits forever: the child either
writes and exits or dies, and either closes the pipe. ``close()`` (also on leaving a ``with``
block) kills and reaps a child whose result was not taken.

Only for pure functions of data already in memory: the child must not touch the database, the
broker or files the parent also writes. It holds none of them: every inherited file descriptor but
the pipe is closed in the child (a killed caller's database connection, and any advisory lock on
it, goes away with the caller, not with a child still computing), and on Linux the child is killed
when its parent dies (no orphan computing on). Where fork is missing, or ``parallel`` is false,
``fn`` runs in this process when the result is first asked for: the same values, serially.
"""

from __future__ import annotations

import os
import pickle
import signal
import traceback
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class WorkerLost(RuntimeError):
    """The worker process ended without sending its result."""


def can_fork() -> bool:
    return hasattr(os, "fork")


class Forked(Generic[T]):
    """``fn()`` computed in a forked child (see the module docstring)."""

    def __init__(
        self,
        fn: Callable[[], T],
        *,
        parallel: bool = True,
        name: str = "agreement worker",
        before_fork: Callable[[], None] | None = None,
    ) -> None:
        """``before_fork`` runs in the caller just before the fork (e.g. handing free allocator
        memory back, so that the child shares no free pages the caller would copy on reuse)."""
        self._fn: Callable[[], T] | None = fn
        self._name = name
        self._pid = 0
        self._fd = -1
        self._done = False
        self._value: Any = None
        if parallel and can_fork():
            if before_fork is not None:
                before_fork()
            self._start()

    def _start(self) -> None:
        assert self._fn is not None
        r, w = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: compute, send, exit without running the parent's clean-up
            code = 0
            try:
                os.close(r)
                _die_with_parent(parent)
                os.closerange(3, w)  # none of the caller's sockets or files, only the pipe's end
                os.closerange(w + 1, _max_fd())
                try:
                    out: tuple[bool, Any] = (True, self._fn())
                except BaseException as exc:  # noqa: BLE001 - sent to the parent, raised there
                    out = (False, _portable(exc))
                data = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
                view = memoryview(data)
                while view:
                    view = view[os.write(w, view):]
            except BaseException:  # noqa: BLE001 - the parent reports a lost worker
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        self._pid, self._fd, self._fn = pid, r, None

    def result(self) -> T:
        if not self._done:
            if self._pid:
                self._value = self._collect()
            else:
                assert self._fn is not None
                fn, self._fn = self._fn, None
                self._value = (True, fn())
            self._done = True
        ok, value = self._value
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _collect(self) -> tuple[bool, Any]:
        chunks: list[bytes] = []
        try:
            while True:
                chunk = os.read(self._fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self._fd)
            self._fd = -1
        status = self._reap()
        if not chunks:
            raise WorkerLost(f"the {self._name} (process {self._pid}) ended without a result ({_describe(status)})")
        return pickle.loads(b"".join(chunks))  # type: ignore[no-any-return]

    def _reap(self) -> int:
        pid, self._pid = self._pid, 0
        while True:
            try:
                return os.waitpid(pid, 0)[1]
            except InterruptedError:  # pragma: no cover - retried by Python itself since 3.5
                continue
            except ChildProcessError:  # reaped elsewhere (a SIGCHLD handler)
                return -1

    def close(self) -> None:
        """Kill and reap the child if its result was not taken (an error in the parent's own work)."""
        if self._pid:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._reap()
        self._fn = None

    def __enter__(self) -> Forked[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError, AttributeError):
        return 4096


def _die_with_parent(parent: int) -> None:
    """Linux: this (forked) process gets SIGKILL when its parent dies; elsewhere nothing."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the parent kills its children on every exit path
        pass
    if os.getppid() != parent:  # the parent died before that
        os._exit(1)


def _portable(exc: BaseException) -> BaseException:
    """The exception as it can cross the pipe: itself when it pickles (with the child's traceback as
    a note), else a RuntimeError with its type and message."""
    note = "in the forked worker:\n" + "".join(traceback.format_exception(exc))
    try:
        exc.add_note(note)
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - whatever fails to pickle
        plain = RuntimeError(f"{type(exc).__name__}: {exc}")
        plain.add_note(note)
        return plain


def _describe(status: int) -> str:
    if status < 0:
        return "status unknown"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return f"killed by {signal.Signals(sig).name}"
        except ValueError:
            return f"killed by signal {sig}"
    return f"exit status {os.WEXITSTATUS(status)}"
