"""Run a piece of decoding in a forked child: the second core, without copying the file.

A forked child shares the parent's memory (the file's bytes or their mapping), so it can decode
a slice of them at once, with no start-up and no transfer in; only its result, numpy columns,
comes back through a pipe. Used for files large enough that this pays (see load.SPLIT_MIN_BYTES).
:func:`spliced` lets each process decode its slice of the file where it lies.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import warnings
from dataclasses import dataclass, field

from labellint import buffers


#: A forked child that allocates objects reuses free slots of the parent's heap, and each first
#: write to a page shared with the parent is a copy-on-write fault. With a small heap (a fresh
#: `labellint check`) that costs nothing; with gigabytes of live, fragmented objects (say, a
#: huge dataset decoded generically just before) it made the children four times slower than
#: one serial decode. Above this much private memory, don't fork.
MAX_PRIVATE_BYTES = 1 << 30


def available() -> bool:
    """Forking helps here only on Linux (macOS frameworks are not fork-safe) with a second core
    and a process that is not already holding a large heap."""
    if not hasattr(os, "fork") or not sys.platform.startswith("linux") or os.environ.get("LABELLINT_NO_FORK"):
        return False
    try:
        if len(os.sched_getaffinity(0)) < 2:
            return False
        with open("/proc/self/statm") as f:
            resident, shared = (int(v) for v in f.read().split()[1:3])
        return (resident - shared) * os.sysconf("SC_PAGE_SIZE") < MAX_PRIVATE_BYTES
    except (OSError, ValueError):  # pragma: no cover
        return False


@dataclass(eq=False)
class Child:
    pid: int
    fds: list  # read ends: the result of work(), then those of the later jobs, in order
    reaped: bool = False
    received: dict = field(default_factory=dict)  # pipe index -> (ok, value), read but not yet asked for
    shares: list = field(default_factory=list)  # see share()


@dataclass(eq=False)
class Share:
    """One consumer's claim on one later result of a child (see :func:`share`)."""

    child: Child
    which: int
    settled: bool = False  # taken, or given up


def share(child: Child | None, which: int) -> Share | None:
    """A claim on later result ``which`` of ``child``, for consumers that do not know of each
    other: each takes its result with :func:`later` and gives it up with :func:`stop`, and the
    child is killed only once every claim on it is settled (or when it is stopped itself)."""
    if child is None:
        return None
    claim = Share(child, which)
    child.shares.append(claim)
    return claim


def _settle(claim: Share) -> None:
    claim.settled = True
    if all(c.settled for c in claim.child.shares):
        stop(claim.child)


class ChildFailed(Exception):
    """The child raised, was killed or could not be started; the caller does the work itself."""


def start(work, *later_jobs) -> Child | None:
    """Run ``work()`` in a forked child; None when no process could be started.

    The child never returns into the caller: it pickles ``work()``'s value (or the exception
    it raised) to a pipe, then runs each of ``later_jobs`` in turn and pickles its value to a
    pipe of its own, and leaves with ``os._exit``, skipping all cleanup (so the objects it
    built cost nothing to free). Later jobs are work for later that the caller may never want
    (the child lowers its priority for them, so that they use a core this process leaves
    idle). Their results are written by threads, so that the next job starts at once; the child
    leaves when the caller has read them all (:func:`later`) or kills it (:func:`stop`).

    The child runs only msgspec, numpy and pickle and takes no lock that another thread (a
    progress bar's) could hold, so forking a process that has threads is safe here; Python >=
    3.12 warns about that in general, hence the filter.
    """
    jobs = (work, *later_jobs)
    pipes = [os.pipe() for _ in jobs]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError:
        for r, w in pipes:
            os.close(r)
            os.close(w)
        return None
    if pid == 0:  # pragma: no cover - runs in the child; the parent checks what it sends
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: just die, the parent reports
            for r, _ in pipes:
                os.close(r)
            writers = []
            for i, ((_, w), job) in enumerate(zip(pipes, jobs)):
                if i == 1:
                    _lower_priority()
                result = _run(job)
                if i == 0:
                    _send(w, result)
                else:  # the caller may want a later result only after the next one: go on meanwhile
                    writers.append(threading.Thread(target=_send, args=(w, result), daemon=True))
                    writers[-1].start()
                if not result[0]:
                    break
            for writer in writers:
                writer.join()
            code = 0
        finally:
            os._exit(code)
    for _, w in pipes:
        os.close(w)
    return Child(pid, [r for r, _ in pipes])


#: Niceness the children add for their later jobs: speculative work must not slow the parent.
LATER_NICENESS = 10


def _lower_priority() -> None:  # pragma: no cover - runs in the child
    try:
        os.nice(LATER_NICENESS)
    except OSError:
        pass


def _run(job) -> tuple:
    try:
        return True, job()
    except Exception as exc:  # the parent decides what a failure means
        return False, exc if _picklable(exc) else RuntimeError(repr(exc))


def _send(fd: int, result: tuple) -> None:
    """Write ``result`` to the pipe; blocks until the parent has read it (or is gone)."""
    try:
        with open(fd, "wb", closefd=True) as pipe:
            # pickled straight into the pipe: the large arrays are written from where they are,
            # with no copy of the whole payload in memory (a result that fails to pickle half-way
            # reaches the parent as a broken pickle: ChildFailed, as for a child that died)
            pickle.dump(result, pipe, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # the parent stopped reading (it closed the pipe): nobody wants it
        pass


def _picklable(exc: BaseException) -> bool:
    try:
        pickle.dumps(exc)
        return True
    except Exception:
        return False


class _OwnResultsOnly(pickle.Unpickler):
    """Our own child's results come back pickled; even so, rebuild only the kinds of object the
    decode produces (numpy arrays, the loader's column dataclasses, exceptions), nothing else."""

    _ALLOWED_PREFIXES = ("numpy", "labellint.coco.", "msgspec")

    def find_class(self, module, name):
        if module.startswith(self._ALLOWED_PREFIXES) or (
                module == "builtins" and (name in _BUILTIN_OK or name.endswith(("Error", "Exception")))):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name} from the decode child")


_BUILTIN_OK = {"list", "dict", "tuple", "set", "frozenset", "bytes", "bytearray", "str", "int", "float",
               "bool", "slice", "complex"}


def _read(child: Child, which: int):
    """(ok, value) from pipe ``which``; the pipes before it are read first (the child writes
    them in order and blocks on each until it is read) and their results kept for later."""
    if which in child.received:
        return child.received.pop(which)
    if child.reaped or len(child.fds) <= which or child.fds[which] is None:
        raise ChildFailed("no child process")
    for earlier in range(which):
        if child.fds[earlier] is not None:
            child.received[earlier] = _read(child, earlier)
    fd, child.fds[which] = child.fds[which], None
    try:
        with open(fd, "rb", closefd=True) as pipe:
            return _OwnResultsOnly(pipe).load()
    except Exception as exc:  # killed, out of memory: nothing (or half a result) came back
        stop(child)
        raise ChildFailed(str(exc)) from None


def _receive(child: Child | None, which: int):
    if child is None:
        raise ChildFailed("no child process")
    ok, value = _read(child, which)
    if not ok or all(fd is None for fd in child.fds):
        stop(child)  # failed (nothing more will come) or all read: reap it
    if ok:
        return value
    raise value


def result(child: Child | None):
    """The value of the child's ``work()``; re-raises its exception; ChildFailed when it died
    or never ran. Reaps the child unless it has later jobs still to hand over."""
    return _receive(child, 0)


def later(child: Child | Share | None, which: int | None = None):
    """The value of the child's later job number ``which`` (1 for the first; default: the last;
    a Share's own), waiting for it; reaps the child once every result has been read."""
    if isinstance(child, Share):
        if child.settled:
            raise ChildFailed("given up")
        try:
            return _receive(child.child, child.which)
        finally:
            _settle(child)
    if which is None:
        which = len(child.fds) - 1 if child is not None else 1
    return _receive(child, which)


def stop(child: Child | Share | None) -> None:
    """Kill a child whose results are no longer wanted (only ours, by pid) and reap it; for a
    Share, give up that claim (the child goes with the last one)."""
    if isinstance(child, Share):
        if not child.settled:
            _settle(child)
        return
    if child is None or child.reaped:
        return
    for fd in child.fds:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:  # pragma: no cover
                pass
    child.fds = [None] * len(child.fds)
    try:
        os.kill(child.pid, signal.SIGKILL)
    except ProcessLookupError:  # pragma: no cover
        pass
    os.waitpid(child.pid, 0)
    child.reaped = True


spliced = buffers.spliced  # the loader and positions call it as parallel.spliced
