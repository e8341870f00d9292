"""Benchmarks 2 and 3: a CSV audience of N rows uploaded by the operator, peak RSS above idle.

* ``portions`` (benchmark 2): ``MobizonAddRecipientsOperator(recipients="<file>.csv")``:
  read, normalised and uploaded in portions of 500 as the file streams.
* ``file`` (benchmark 3): the same with ``file_upload_threshold=0``: spooled to
  temporary CSV part(s), each uploaded as ``recipientsFile``, each background task
  waited for; timed end to end, with the time spent in each phase.

The child measures its idle RSS after importing everything and a warm-up upload, then
resets the kernel's peak-RSS counter (``/proc/self/clear_refs``), so the peak it
reports is the upload's own.

Child: ``python -m bench.memory MODE CSV_PATH COUNT``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from bench.common import CONN_ID, Timer, emit, new_campaign, peak_rss_mb, phone, reset_peak_rss, rss_mb, sandbox


def write_csv(path: Path, count: int) -> Path:
    """``recipient`` then ``count`` numbers, one per line."""
    with path.open("w") as fh:
        fh.write("recipient\n")
        for start in range(0, count, 10_000):
            fh.write("".join(f"{phone(i)}\n" for i in range(start, min(start + 10_000, count))))
    return path


def _phases(hook_cls: Any, upload_module: Any) -> dict[str, float]:
    """Wrap the file path's network steps so the child can report where the time went."""
    spent = {"upload_seconds": 0.0, "task_wait_seconds": 0.0}

    def timed(func: Any, key: str) -> Any:
        def wrapper(*args: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return func(*args, **kw)
            finally:
                spent[key] += time.perf_counter() - started

        return wrapper

    hook_cls.add_recipients = timed(hook_cls.add_recipients, "upload_seconds")
    upload_module.wait_for_task = timed(upload_module.wait_for_task, "task_wait_seconds")
    return spent


def child(mode: str, csv_path: str, count: int) -> None:
    from airflow_sms_provider.campaigns import mobizon_upload
    from airflow_sms_provider.hooks.mobizon import MobizonHook
    from airflow_sms_provider.operators.mobizon import MobizonAddRecipientsOperator

    def operator(source: str, campaign_id: int) -> Any:
        threshold = 0 if mode == "file" else None
        return MobizonAddRecipientsOperator(
            task_id=f"bench_{mode}", mobizon_conn_id=CONN_ID, campaign_id=campaign_id, recipients=source,
            file_upload_threshold=threshold,
        )  # fmt: skip

    warm = Path(csv_path).with_name("warm-up.csv")
    write_csv(warm, 1000)
    operator(str(warm), new_campaign()).execute({})  # imports and first-use allocations
    phases = _phases(MobizonHook, mobizon_upload) if mode == "file" else {}
    campaign_id = new_campaign()
    idle = rss_mb()
    exact = reset_peak_rss()
    with Timer() as timer:
        summary = operator(csv_path, campaign_id).execute({})
    peak = peak_rss_mb()
    result = {
        "mode": mode, "count": count, "seconds": timer.wall, "cpu_seconds": timer.cpu, "rate": count / timer.wall,
        "idle_rss_mb": idle, "peak_rss_mb": peak, "peak_above_idle_mb": peak - idle, "peak_reset": exact,
        "added": summary.get("added"), "files": summary.get("files"), **phases,
    }  # fmt: skip
    if mode == "file":
        result["spool_and_rest_seconds"] = timer.wall - phases["upload_seconds"] - phases["task_wait_seconds"]
    emit(result)


def run(count: int, latency_ms: float, workdir: Path) -> dict[str, dict[str, Any]]:
    """Both modes on one CSV of ``count`` rows, each in a fresh child against a fresh sandbox."""
    from bench.common import run_child

    path = write_csv(workdir / "audience.csv", count)
    results = {}
    # Background imports as fast as the sandbox can add rows: Mobizon's real speed is unknown,
    # so the task wait measured is the sandbox's (>= 1 s per task, polled once a second).
    with sandbox(latency_ms, 2 * latency_ms, task_rows_per_second=10**9, taskqueue_min_interval=1.0) as box:
        for mode in ("portions", "file"):
            box.reset()
            cpu = box.cpu_seconds()
            results[mode] = run_child("memory", mode, path, count, url=box.url)
            results[mode]["server_cpu_seconds"] = box.cpu_seconds() - cpu
            results[mode]["sandbox_rss_mb"] = box.rss_mb()
    return results


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], int(sys.argv[3]))
