"""A fork server that runs the command line once per case, each run in its own forked process.

Starting Python and importing labellint costs about half a second; linting a fuzz case, a tenth.
So a worker imports the command line once and forks a child per case: the child is a fresh copy of
a process that has just started (nothing of an earlier case is left in it), runs the entry point
exactly as ``python -m labellint ARGS`` does, and dies. The worker enforces the limits:

* memory: RLIMIT_AS in the child, so runaway memory ends in MemoryError (or a signal), not in the
  machine swapping;
* time: the child is killed (its whole process group: labellint forks helpers for large files)
  once it has run past its timeout; it gets SIGABRT first, which faulthandler turns into a
  dump of every thread's stack, so a hang says where it hangs;
* no core files, and a cap on the size of any file it writes.

Protocol: one JSON object per line on stdin (``dir``, ``argv``, ``env``, ``unset``, ``stdout``,
``stderr``, ``timeout``, ``mem``), one JSON object per line on stdout (``rc``: the exit code, or
minus the signal; ``timed_out``; ``wall``; ``maxrss_kb``). ``--entry MODULE:FUNCTION`` (or
``FILE.py:FUNCTION``) is what a child calls; labellint's own ``__main__.main`` by default.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import resource
import select
import signal
import sys
import time

FSIZE_LIMIT = 1 << 30  # no case needs to write a bigger file; a runaway writer gets SIGXFSZ
ABORT_GRACE = 2.0  # seconds between the SIGABRT that dumps the stacks and the SIGKILL


_STREAMS = (sys.__stdout__.encoding, sys.__stdout__.errors)


def load_entry(spec: str):
    module, _, func = spec.rpartition(":")
    if module.endswith(".py"):
        s = importlib.util.spec_from_file_location("fuzz_entry", module)
        mod = importlib.util.module_from_spec(s)
        s.loader.exec_module(mod)
    else:
        mod = importlib.import_module(module)
    return getattr(mod, func)


def limit_child(mem: int | None) -> None:
    """The limits a case runs under (also the preexec_fn of the subprocess mode)."""
    os.setpgid(0, 0)
    if mem:
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))


def _child(req: dict, entry) -> None:
    code = 1
    try:
        limit_child(req.get("mem"))
        os.chdir(req["dir"])
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (null, out, err):
            os.close(fd)
        # streams as the interpreter opens them for a pipe (the worker's own are its channel)
        enc, errors = _STREAMS
        sys.stdin = open(0, "r", encoding=enc, closefd=False)
        sys.stdout = open(1, "w", encoding=enc, errors=errors, closefd=False)
        sys.stderr = open(2, "w", encoding=enc, errors="backslashreplace", buffering=1, closefd=False)
        for name in req.get("unset", ()):
            os.environ.pop(name, None)
        os.environ.update(req.get("env", {}))
        import faulthandler

        faulthandler.enable(file=sys.stderr, all_threads=True)
        sys.argv = ["labellint", *req["argv"]]
        try:
            entry()
            code = 0
        except SystemExit as exc:  # as the interpreter treats it at the top level
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # as an uncaught exception ends `python -m labellint`
            import traceback

            traceback.print_exc()
            code = 1
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(code & 0xFF)


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_one(req: dict, entry) -> dict:
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(req, entry)
    try:
        os.setpgid(pid, pid)  # also here: whichever of the two runs first, the group exists
    except OSError:
        pass
    timeout = float(req.get("timeout", 20))
    timed_out = not _wait_exit(pid, timeout)
    if timed_out:
        _kill_group(pid, signal.SIGABRT)  # faulthandler prints where each thread is
        if not _wait_exit(pid, ABORT_GRACE):
            _kill_group(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    _kill_group(pid, signal.SIGKILL)  # helpers it left behind
    return {"rc": os.waitstatus_to_exitcode(status), "timed_out": timed_out,
            "wall": round(time.monotonic() - start, 3), "maxrss_kb": usage.ru_maxrss}


def _wait_exit(pid: int, timeout: float) -> bool:
    """Whether the child ended within ``timeout`` seconds (it stays unreaped)."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        try:
            return bool(select.select([fd], [], [], timeout)[0])
        finally:
            os.close(fd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        time.sleep(0.005)
    return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entry", default="labellint.__main__:main")
    parser.add_argument("--preload", default="")
    args = parser.parse_args()
    entry = load_entry(args.entry)
    for name in filter(None, args.preload.split(",")):
        try:
            if name.endswith(".*"):  # a package and every module in it (labellint's rules)
                import pkgutil

                package = importlib.import_module(name[:-2])
                for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
                    importlib.import_module(info.name)
            else:
                importlib.import_module(name)
        except Exception:  # an optional module the case may not need: the child imports it itself
            pass
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints of preloaded code stay off the channel
    sys.stdout = open(os.devnull, "w")
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        channel.write(json.dumps(run_one(req, entry)) + "\n")
        channel.flush()


if __name__ == "__main__":
    main()
