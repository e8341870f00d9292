"""Kill a task's worker process for real, and let Airflow retry it in the same DAG run.

``python -m tests.worker_kill READY_FILE`` is a harness process (started by :class:`Harness`):
it serves Airflow's execution API on 127.0.0.1 in a thread, then reads one JSON command per
line on stdin, ``{"dag_id", "env", "result"}``, and runs that DAG of tests/worker_kill_dags.py
with ``dag.test(use_executor=True)``. Each task try then runs as Airflow runs it in production:
LocalExecutor worker -> supervisor -> task process. When a test SIGKILLs the task process, the
supervisor reports the try failed, the task instance goes up_for_retry and the same dag.test
loop runs the retry in the same DAG run, so the task's durable state (``task_state_store``,
Airflow >= 3.3) is still there. The outcome is written as JSON to the command's ``result`` path.

(Two separate ``dag.test()`` calls would not do: the second deletes the DAG run, and the
durable state with it.)

Airflow < 3.1 fails a SIGKILLed task without retrying it (apache/airflow#55753). There a
command with ``"rerun": true`` stands in for the operator clearing the failed task: a
second ``dag.test()`` with the same dates, so the same run id, after the first one ends.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
_START_TIMEOUT = 180.0  # a cold Airflow import and the execution API's first request, on a loaded machine


# ------------------------------------------------------------------ the harness process


def _serve_execution_api() -> Any:
    """Airflow's execution API (what task processes talk to) on a free loopback port, in a thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # Read by the executor (where workers send task processes) at call time, so set before any run.
    os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{port}/execution/"
    import httpx
    import uvicorn
    from airflow.api_fastapi.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(apps="execution"), log_level="warning", lifespan="on"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="execution-api", daemon=True).start()
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the execution API did not start")
        time.sleep(0.05)
    # The first request builds the versioned routes (seconds on a busy machine): pay that here,
    # not in the first task's first call, which would time out and retry.
    httpx.get(f"http://127.0.0.1:{port}/execution/health", timeout=_START_TIMEOUT).raise_for_status()
    return server


def _run(command: dict[str, Any]) -> dict[str, Any]:
    from airflow.providers.common.compat.sdk import DAG

    from tests import worker_kill_dags
    from tests.helpers import register_dag

    os.environ.update(command.get("env") or {})  # inherited by the executor's workers and task processes
    dags = {d.dag_id: d for d in vars(worker_kill_dags).values() if isinstance(d, DAG)}
    dag = dags[command["dag_id"]]
    register_dag(dag)
    # Both dates fixed: a rerun gets the same run id, so the same tags and reference ids.
    when = dt.datetime.now(dt.timezone.utc)
    runs = []
    for _ in range(2 if command.get("rerun") else 1):
        run = dag.test(use_executor=True, logical_date=when, run_after=when)
        tis = [{"task_id": ti.task_id, "state": str(ti.state), "try_number": ti.try_number}
               for ti in run.get_task_instances()]  # fmt: skip
        runs.append({"dag_run_state": str(run.state), "run_id": run.run_id, "task_instances": tis})
    return {"runs": runs}


def serve(ready_file: str) -> None:
    """The harness main loop: one DAG run per stdin line, until stdin closes."""
    os.environ["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
    os.environ["AIRFLOW__CORE__PARALLELISM"] = "1"
    # The executor signs each task's token and the API checks it: one secret, set before Airflow reads it.
    os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))
    sys.path.insert(0, str(ROOT))
    server = _serve_execution_api()
    Path(ready_file).write_text(str(os.getpid()))
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        started = time.monotonic()
        try:
            result = _run(command)
        except Exception:
            result = {"error": traceback.format_exc()}
        result["seconds"] = round(time.monotonic() - started, 2)
        target = Path(command["result"])
        target.with_suffix(".tmp").write_text(json.dumps(result))
        target.with_suffix(".tmp").replace(target)  # whole or absent: the test polls for it
    server.should_exit = True


# ------------------------------------------------------------------ the test side


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])  # the fields after "(comm)": state, ppid, ...


def _descends_from(pid: int, ancestor: int) -> bool:
    try:
        while pid > 1:
            if pid == ancestor:
                return True
            pid = _parent(pid)
    except (OSError, ValueError, IndexError):
        return False
    return False


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Run:
    """One DAG run submitted to the harness: its task processes' pids, the kill, the outcome."""

    def __init__(self, harness: Harness, workdir: Path) -> None:
        self.harness = harness
        self.pid_file = workdir / "pids"
        self.result_file = workdir / "result.json"
        self.killed: list[int] = []
        self.log_offset = harness.log_path.stat().st_size if harness.log_path.exists() else 0

    def log(self) -> str:
        """What the harness and this run's task processes logged (task logs go to its stdout)."""
        with self.harness.log_path.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    def pids(self) -> list[tuple[int, int]]:
        """(try number, pid) of each task process started so far, in order."""
        if not self.pid_file.exists():
            return []
        pairs = (line.split() for line in self.pid_file.read_text().splitlines() if line.strip())
        return [(int(try_number), int(pid)) for try_number, pid in pairs]

    def kill(self) -> int:
        """SIGKILL the first task process (nothing else: it must descend from the harness)."""
        pid: int = wait_until(lambda: self.pids() and self.pids()[0][1], 30, "the task process's pid")
        assert _descends_from(pid, self.harness.pid), f"pid {pid} is not a task process of the harness"
        os.kill(pid, signal.SIGKILL)
        self.killed.append(pid)
        return pid

    def result(self, timeout: float = 120) -> dict[str, Any]:
        """The harness's outcome of this run (the DAG run ended)."""
        try:
            wait_until(lambda: self.result_file.exists() or not self.harness.alive(), timeout,
                       "the DAG run to end", interval=0.1)  # fmt: skip
        except AssertionError:
            self.harness.stop()  # stuck: the next test gets a fresh harness
            raise AssertionError(f"the DAG run did not end\n{self.harness.log_tail()}") from None
        if not self.result_file.exists():
            raise AssertionError(f"the harness died\n{self.harness.log_tail()}")
        result: dict[str, Any] = json.loads(self.result_file.read_text())
        assert "error" not in result, f"{result['error']}\n{self.harness.log_tail()}"
        return result

    def check_alive(self) -> bool:
        """False once the run ended or the harness died (so a poll does not wait for nothing)."""
        return not self.result_file.exists() and self.harness.alive()


class Harness:
    """The harness process (``python -m tests.worker_kill``), started once and fed DAG runs."""

    def __init__(self, workdir: Path, python: str = sys.executable) -> None:
        self.workdir, self.python = workdir, python
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = workdir / "harness.log"
        self._log: IO[bytes] | None = None
        self.runs = 0
        self.startup_seconds = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        ready = self.workdir / "ready"
        ready.unlink(missing_ok=True)
        started = time.monotonic()
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [self.python, "-m", "tests.worker_kill", str(ready)], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=self._log, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # task logs reach the file as they are written
            start_new_session=True,  # its own process group: stop() ends the harness and all it started
        )  # fmt: skip
        try:
            wait_until(lambda: ready.exists() or not self.alive(), _START_TIMEOUT, "the harness to start", 0.1)
        except AssertionError:
            self.stop()
            raise
        if not ready.exists():
            raise AssertionError(f"the harness did not start\n{self.log_tail()}")
        self.startup_seconds = time.monotonic() - started

    def submit(self, dag_id: str, env: dict[str, str], workdir: Path, rerun: bool = False) -> Run:
        """Start a run of ``dag_id``; the task processes see ``env`` (connections) too.

        ``rerun``: run the DAG run (same run id) a second time after the first ends.
        """
        if not self.alive():
            self.start()
        run = Run(self, workdir)
        run.pid_file.unlink(missing_ok=True)
        run.result_file.unlink(missing_ok=True)
        from tests.worker_kill_dags import PID_FILE_ENV

        env = {**env, PID_FILE_ENV: str(run.pid_file)}
        command = {"dag_id": dag_id, "env": env, "result": str(run.result_file), "rerun": rerun}
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        self.runs += 1
        return run

    def log_tail(self, chars: int = 6000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "harness log (tail):\n" + text[-chars:]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()  # the harness ends its loop and exits
                self.proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            # The group this harness leads (start_new_session): itself and the processes it started.
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        if self._log is not None:
            self._log.close()
        self.proc = None


if __name__ == "__main__":
    serve(sys.argv[1])
