"""What every benchmark shares: the sandbox in its own process, child processes, RSS, numbers.

Each measurement runs in a fresh child process (``python -m bench.<module>``) that prints
one JSON line, so its timings and RSS are its own; the sandbox runs in another process,
so the two cores of a small machine are split between server and client.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "sandboxmobizon0123456789abcdef0123456789"  # SANDBOX_MOBIZON_API_KEY (not imported: no Airflow here)
CONN_ID = "mobizon_default"


def phone(i: int) -> str:
    """The i-th benchmark number: 11 digits, ending in 1, so never on the sandbox's stop list."""
    return f"77{i:08d}1"


def phones(start: int, count: int) -> Iterator[str]:
    """``phone(i) for i in range(start, start + count)``, made in C: an audience costs its reader next to nothing.

    A generator of f-strings cost ~0.6 ms of CPU per 1,000 numbers, counted as the package's in row 1
    (the limit's bodies are encoded before its clock starts).
    """
    if not 0 <= start <= start + count <= 10**8:
        raise ValueError(f"phones({start}, {count}): only the first 10**8 numbers have 11 digits")
    return map(str, range(77_000_000_001 + 10 * start, 77_000_000_001 + 10 * (start + count), 10))


# ------------------------------------------------------------------ sandbox


@dataclass
class Sandbox:
    """A sandbox server process and its admin API."""

    url: str
    process: subprocess.Popen[str]

    def admin(self, method: str, path: str, **kw: Any) -> Any:
        response = httpx.request(method, f"{self.url}/_sandbox/{path}", timeout=120, **kw)
        response.raise_for_status()
        return response.json()

    def configure(self, **config: Any) -> None:
        self.admin("POST", "config", json=config)

    def reset(self) -> None:
        self.admin("POST", "reset")

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        return _status_kb(f"/proc/{self.process.pid}/status", "VmRSS") / 1024


@contextmanager
def sandbox(latency_ms: float = 0.0, connect_latency_ms: float = 0.0, **config: Any) -> Iterator[Sandbox]:
    """``airflow-sms-sandbox`` on a free port in a separate process, stopped on exit."""
    args = [sys.executable, "-m", "airflow_sms_provider.sandbox.server", "--port", "0", "--speed", "1",
            "--latency-ms", str(latency_ms), "--connect-latency-ms", str(connect_latency_ms)]  # fmt: skip
    for key, value in config.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=child_env())
    try:
        match = re.search(r"(http://\S+)", process.stdout.readline() if process.stdout else "")
        if match is None:
            raise RuntimeError("the sandbox did not start")
        box = Sandbox(match.group(1), process)
        deadline = time.monotonic() + 30
        while True:
            try:
                box.admin("GET", "health")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield box
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


# ------------------------------------------------------------------ child processes

_HOME = tempfile.mkdtemp(prefix="sms-bench-airflow-")


def child_env(**extra: str) -> dict[str, str]:
    """Environment of a child: its own AIRFLOW_HOME (SQLite, no examples), the sandbox connection."""
    env = {**os.environ, "AIRFLOW_HOME": _HOME, "AIRFLOW__CORE__LOAD_EXAMPLES": "False", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def connection_env(url: str) -> dict[str, str]:
    conn = {"conn_type": "mobizon", "host": url, "password": API_KEY, "extra": {"retry_base_delay": 0.05}}
    return {"AIRFLOW_CONN_MOBIZON_DEFAULT": json.dumps(conn), "BENCH_SANDBOX_URL": url}


def run_child(module: str, *args: Any, url: str | None = None, timeout: float = 1800) -> dict[str, Any]:
    """Run ``python -m bench.<module> args...``; its last stdout line is a JSON result."""
    env = child_env(**(connection_env(url) if url else {}))
    log = Path(_HOME) / f"{module}.log"
    with log.open("a") as err:
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{module}", *map(str, args)],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=ROOT, timeout=timeout, check=False,
        )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"bench.{module} {args} failed (exit {done.returncode}); see {log}")
    return json.loads(lines[-1])


def emit(result: dict[str, Any]) -> None:
    """A child's result: one JSON line on stdout."""
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------ measurements


def _status_kb(path: str, field: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_mb() -> float:
    """This process's resident memory now."""
    return _status_kb("/proc/self/status", "VmRSS") / 1024


def peak_rss_mb() -> float:
    """This process's peak resident memory since start (or since :func:`reset_peak_rss`)."""
    return _status_kb("/proc/self/status", "VmHWM") / 1024


def reset_peak_rss() -> bool:
    """Start the peak over from the current RSS (Linux clear_refs 5); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Timer:
    """Wall and CPU seconds of a block."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def new_campaign(text: str = "Bench sale") -> int:
    """A fresh bulk campaign through the package's hook."""
    return new_campaigns(1, text)[0]


def new_campaigns(count: int, text: str = "Bench sale") -> list[int]:
    """``count`` fresh bulk campaigns through one hook."""
    from airflow_sms_provider.hooks.mobizon import MobizonHook

    hook = MobizonHook(CONN_ID)
    try:
        return [hook.create_campaign(text, name="bench") for _ in range(count)]
    finally:
        hook.close()
