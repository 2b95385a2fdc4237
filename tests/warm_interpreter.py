"""Command processes without the six seconds of importing torch and Lightning, for the tests.

Every command the tests run imports torch, Lightning, torchmetrics and Hydra first: about
5.6 s of CPU in each of some 300 processes, a third of the suite. A warm interpreter
imports those libraries once (per xdist worker) and forks a child for each command. The
child is a real process: its own pid, argv, environment, working directory, standard
streams, signals and exit status, and it imports this project fresh, as a user's process
does. Only the third-party libraries were imported before the fork, so a test that needs
the interpreter's own start (a signal during the imports, the console scripts, torchrun)
starts a fresh one (``fresh=True``), and ``TEST_FRESH_PROCESSES=1`` starts every command
fresh, to show that no test depends on the warm start.

Run as a script, this file is the server: ``python warm_interpreter.py <socket>``.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

# Imported once in the server: the heavy libraries every command imports (not this project).
PRELOAD = ("torch", "lightning.pytorch", "torchmetrics", "hydra", "omegaconf", "numpy", "yaml", "PIL.Image")

# Variables a command reads when it runs, not while the preloaded libraries import: a child may
# set them differently from the server. Any other difference starts a fresh interpreter.
# (pytest sets PYTEST_CURRENT_TEST to each test's name: without it here, only the test that started the
# server would use it.)
READ_AT_RUN_TIME = (
    "PATH",
    "PYTHONUNBUFFERED",
    "HYDRA_FULL_ERROR",
    "WANDB_",
    "SLURM_",
    "CUDA_VISIBLE_DEVICES",
    "TEST_",
    "PYTEST_CURRENT_TEST",
)

MAX_REQUEST = 1 << 20


def import_time_differences(server: dict[str, str], command: dict[str, str]) -> list[str]:
    """The variables a command's environment sets otherwise than the server's that the preloaded libraries
    may have read: where there is one, the command needs an interpreter of its own."""
    changed = {key for key in server.keys() | command.keys() if server.get(key) != command.get(key)}
    return sorted(key for key in changed if not key.startswith(READ_AT_RUN_TIME))


# ---------------------------------------------------------------- server (runs in its own interpreter)


def assert_safe_to_fork() -> None:
    """A fork copies one thread and whatever the libraries set up: the server must hold no other thread (a lock
    held there stays held in the child) and no CUDA context (which cannot be used after a fork)."""
    assert threading.active_count() == 1, f"the warm interpreter runs {threading.active_count()} threads"
    torch = sys.modules.get("torch")
    assert torch is None or not torch.cuda.is_initialized(), "CUDA was initialised in the warm interpreter"


def serve(socket_path: str) -> None:
    for module in PRELOAD:
        __import__(module)
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(socket_path)
    listener.listen(64)
    waiting: dict[int, socket.socket] = {}  # child pid -> the connection that reports its status
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    print("ready", flush=True)
    while os.getppid() == parent:  # the test worker that started it is gone: stop
        for _ in selector.select(timeout=0.05):
            connection, _ = listener.accept()
            message, fds, _, _ = socket.recv_fds(connection, MAX_REQUEST, 3)
            assert_safe_to_fork()
            pid = os.fork()
            if pid == 0:
                selector.close()
                listener.close()
                connection.close()
                for other in waiting.values():  # the connections of other tests' commands: not this child's
                    other.close()
                _run_child(json.loads(message), fds)  # never returns
            for fd in fds:
                os.close(fd)
            connection.send(json.dumps({"pid": pid}).encode())
            waiting[pid] = connection
        for pid in list(waiting):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                connection = waiting.pop(pid)
                with contextlib.suppress(OSError):  # the test stopped waiting
                    connection.send(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode())
                connection.close()
    for pid in waiting:
        os.kill(pid, signal.SIGKILL)


def _standard_stream(fd: int, unbuffered: bool) -> io.TextIOWrapper:
    """What the interpreter makes of fd 0/1/2 at start-up (line buffered on a terminal, unbuffered under
    PYTHONUNBUFFERED)."""
    raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
    stream = raw if unbuffered and fd else (io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw))
    errors = "backslashreplace" if fd == 2 else "strict"
    return io.TextIOWrapper(
        stream, encoding="utf-8", errors=errors, line_buffering=raw.isatty() or fd == 2, write_through=unbuffered
    )


def _run_child(request: dict, fds: list[int]) -> None:
    """Become the command's process: streams, directory, environment, argv; run it; exit as the interpreter would."""
    code = 1
    try:
        if request["new_session"]:
            os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
        sys.stdin, sys.stdout, sys.stderr = (_standard_stream(fd, unbuffered) for fd in (0, 1, 2))
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
        random.seed()  # a fresh interpreter seeds these from the OS; forked children would share them
        import numpy

        numpy.random.seed()
        import runpy

        flag, module, *arguments = request["argv"]
        sys.orig_argv = [sys.executable, flag, module, *arguments]
        sys.argv = [module, *arguments]  # runpy puts the module's path first, as `python -m` does
        sys.path[0] = os.getcwd()
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
    except KeyboardInterrupt:
        sys.excepthook(*sys.exc_info())
        _exit_as_the_interpreter_does(-signal.SIGINT)
    except BaseException:
        sys.excepthook(*sys.exc_info())
    _exit_as_the_interpreter_does(code)


def _exit_as_the_interpreter_does(code: int) -> None:
    """Wait for non-daemon threads, run the exit handlers, flush, exit (an uncaught Ctrl-C ends by SIGINT)."""
    try:
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    finally:
        if code == -signal.SIGINT:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(code & 0xFF)


# ---------------------------------------------------------------- client (runs in the test process)


class WarmProcess:
    """The part of ``subprocess.Popen`` the tests use, for a child of the warm interpreter."""

    def __init__(self, connection: socket.socket, argv: list[str]) -> None:
        self._connection = connection
        self.args = argv
        self.pid: int = json.loads(connection.recv(MAX_REQUEST))["pid"]
        self.returncode: int | None = None

    def _receive(self, timeout: float | None) -> int | None:
        if self.returncode is None:
            self._connection.settimeout(timeout)
            try:
                self.returncode = json.loads(self._connection.recv(MAX_REQUEST))["returncode"]
            except (TimeoutError, BlockingIOError):
                return None
            self._connection.close()
        return self.returncode

    def poll(self) -> int | None:
        return self._receive(0)

    def wait(self, timeout: float | None = None) -> int:
        if self._receive(timeout) is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class WarmInterpreter:
    """One server per test process, started on first use and stopped with the test process."""

    def __init__(self) -> None:
        self._server: subprocess.Popen | None = None
        self._socket = ""
        self._environment: dict[str, str] = {}

    def _start(self) -> None:
        folder = Path(os.environ.get("TMPDIR", "/tmp"))
        self._socket = str(folder / f"warm-interpreter-{os.getpid()}-{time.monotonic_ns()}.sock")
        self._environment = dict(os.environ)
        self._server = subprocess.Popen(
            [sys.executable, __file__, self._socket], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        assert self._server.stdout.readline().strip() == "ready", "the warm interpreter did not start"
        atexit.register(self.stop)

    def stop(self) -> None:
        if self._server is not None:
            self._server.kill()
            self._server.wait()
            Path(self._socket).unlink(missing_ok=True)
            self._server = None

    def can_run(self, argv: list[str], env: dict[str, str]) -> bool:
        """A ``-m module`` command whose environment differs from the server's only where the command reads
        it at run time."""
        if os.environ.get("TEST_FRESH_PROCESSES") or argv[0] != "-m":
            return False
        return not import_time_differences(self._environment if self._server is not None else os.environ, env)

    def popen(self, argv: list[str], *, cwd: Path, env: dict[str, str], stdout, stderr, new_session: bool = False):
        """Start ``python -m module args`` (``argv``) as a child of the warm server."""
        if self._server is None or self._server.poll() is not None:
            self._start()
        with open(os.devnull) as stdin:
            fds = [stdin.fileno(), _fd(stdout), _fd(stderr)]
            request = {"argv": argv, "cwd": str(cwd), "env": env, "new_session": new_session}
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            connection.connect(self._socket)
            socket.send_fds(connection, [json.dumps(request).encode()], fds)
        return WarmProcess(connection, argv)


def _fd(stream) -> int:
    return stream if isinstance(stream, int) else stream.fileno()


def run_captured(
    interpreter: WarmInterpreter, argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float | None
) -> subprocess.CompletedProcess:
    """``subprocess.run(..., capture_output=True, text=True)`` on the warm interpreter."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        process = interpreter.popen(argv, cwd=cwd, env=env, stdout=out_write, stderr=err_write)
    finally:
        os.close(out_write)
        os.close(err_write)
    captured: dict[int, bytes] = {}

    def read(fd: int) -> None:
        with open(fd, "rb") as pipe:
            captured[fd] = pipe.read()

    readers = [threading.Thread(target=read, args=(fd,), daemon=True) for fd in (out_read, err_read)]
    for reader in readers:
        reader.start()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    for reader in readers:
        reader.join()
    decode = lambda fd: captured[fd].decode(errors="replace")  # noqa: E731
    return subprocess.CompletedProcess(argv, process.returncode, decode(out_read), decode(err_read))


if __name__ == "__main__":
    serve(sys.argv[1])
