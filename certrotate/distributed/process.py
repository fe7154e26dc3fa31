"""One service as its own OS process: started until its ready line, killed, stopped."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import sys
import time
from typing import IO

from certrotate.distributed.config import PACKAGES, DistributedConfig


class ServiceStartError(RuntimeError):
    """A service did not print its ready line in time, or exited first; names its log."""


def die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the supervisor dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ServiceProcess:
    """One service's OS process: start until its ready line, kill, stop."""

    def __init__(self, name: str, env: dict[str, str], config: DistributedConfig) -> None:
        self.name = name
        self.env = env
        self._config = config
        self.log_path = config.log_dir / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.url: str | None = None
        # Times this service reported ready; `ready` is False from a start until its ready line.
        self.starts = 0
        self.ready = False
        self._stopping = False
        self._drain: asyncio.Task[None] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        """The process is alive (it may still be starting: see `ready`)."""
        return self.proc is not None and self.proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def exited_unexpectedly(self) -> bool:
        return self.proc is not None and self.proc.returncode is not None and not self._stopping

    async def start(self, timeout: float = 60.0) -> str:
        """Start the process and wait for `ready [url]`; returns the URL (or "")."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log = self.log_path.open("ab")
        self._log.write(f"--- start {self.starts + 1} at {time.ctime()} ---\n".encode())
        self._log.flush()
        self._stopping = False
        self.ready = False
        self.proc = await asyncio.create_subprocess_exec(
            self._config.python,
            "-m",
            PACKAGES[self.name],
            cwd=str(self._config.cwd) if self._config.cwd else None,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        try:
            line = await asyncio.wait_for(self._ready_line(), timeout)
        except TimeoutError:
            self.kill()
            raise ServiceStartError(
                f"{self.name} did not report ready within {timeout:g} s; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            ) from None
        if line is None:
            code = await self.proc.wait()
            raise ServiceStartError(
                f"{self.name} exited with code {code} before it was ready; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            )
        self.url = line.removeprefix("ready").strip() or None
        self.starts += 1
        self.ready = True
        self._drain = asyncio.ensure_future(self._drain_stdout())
        return self.url or ""

    async def _ready_line(self) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                return None
            line = raw.decode(errors="replace").strip()
            if line.startswith("ready"):
                return line
            self._write_log(raw)

    async def _drain_stdout(self) -> None:
        """Whatever the service prints later goes to its log, so the pipe never fills."""
        assert self.proc is not None and self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            self._write_log(raw)

    def _write_log(self, raw: bytes) -> None:
        if self._log is not None and not self._log.closed:
            self._log.write(raw)
            self._log.flush()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (what a crash looks like)."""
        self._stopping = True
        if self.running:
            assert self.proc is not None
            self.proc.kill()

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        if self._drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._drain, 5)
            self._drain = None
        return code

    async def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; the exit code (None if never started)."""
        if self.proc is None:
            return None
        self._stopping = True
        if self.running:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.proc.kill()
        code = await self.wait()
        self._close_log()
        return code

    def _close_log(self) -> None:
        if self._log is not None and not self._log.closed:
            self._log.close()
