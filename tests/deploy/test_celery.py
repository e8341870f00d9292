"""Scale-out: the same deployment on the CeleryExecutor, two workers, one killed mid-upload.

Redis (Debian's package, no persistence, 127.0.0.1) is the broker; two ``airflow celery
worker`` processes take tasks. The campaign of tests/deploy/dags/ reads its audience from and
writes its reject report to object storage (``file://`` on a folder both workers see, as
S3 or GCS would be in production). A sandbox fault holds the 4th addRecipients portion; the
test SIGKILLs the task process parked there, stops that worker, and Airflow's retry runs on
the other worker. At the provider: one campaign, every valid recipient exactly once, one send.
"""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.deployment import Deployment, deployment_secrets, log_files, sandbox_state
from tests.deploy.services import wait_until
from tests.helpers import add_faults
from tests.secret_forms import leaks

pytestmark = pytest.mark.deploy

DAG_ID = "deploy_object_storage_campaign"
NUMBERS = [f"7701{i:07d}" for i in range(1, 3001)]  # 6 portions of 500
INVALID = ["12", "not a phone", "+7 701 abc"]
HOLD = 30.0  # seconds the 4th portion is held: the kill lands well inside it


@pytest.fixture(scope="module")
def celery() -> Iterator[Deployment]:
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="airflow-sms-shared-"))
    env = {"DEPLOY_SHARED_STORAGE": f"file://{shared}", "DEPLOY_TRIES_FILE": str(shared / "tries")}
    rows = ["recipient", *NUMBERS[:1500], *INVALID, *NUMBERS[1500:]]
    (shared / "audience.csv").write_text("\n".join(rows) + "\n")
    try:
        with Deployment(executor="CeleryExecutor", dags_folder=Path(__file__).parent / "dags", workers=2,
                        extra_env=env) as deployed:  # fmt: skip
            deployed.shared = shared  # type: ignore[attr-defined]
            yield deployed
    finally:
        import shutil

        shutil.rmtree(shared, ignore_errors=True)


def _descends_from(pid: int, ancestor: int) -> bool:
    try:
        while pid > 1:
            if pid == ancestor:
                return True
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return False


def _tries(shared: Path) -> list[tuple[int, int, str]]:
    path = shared / "tries"
    if not path.exists():
        return []
    return [(int(t), int(p), w) for t, p, w in (line.split() for line in path.read_text().splitlines() if line)]


def test_killed_worker_the_other_worker_resumes_without_duplicates(celery: Deployment) -> None:
    shared: Path = celery.shared  # type: ignore[attr-defined]
    url = celery.sandbox.url
    add_faults(url, {"provider": "mobizon", "path": "campaign/addRecipients$", "skip": 3, "action": "delay",
                     "seconds": HOLD})  # fmt: skip
    celery.wait_for_dags([DAG_ID])
    api = celery.api
    api.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
    answer = api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
    assert answer.status_code in (200, 201), answer.text
    run_id = answer.json()["dag_run_id"]

    base = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/campaign"

    def parked() -> bool:
        celery.check_alive()
        state = api.get(base).json().get("state")
        assert state not in ("failed", "success", "up_for_retry"), f"try 1 ended {state} before the held portion:\n" + (
            celery.task_log(DAG_ID, run_id, "campaign")[-4000:])
        faults = httpx.get(f"{url}/_sandbox/faults", timeout=10).json()["faults"]
        return faults[0]["hits"] >= 1

    wait_until(parked, 300, "the 4th addRecipients portion to be held", 0.2)
    ((try_number, pid, worker),) = _tries(shared)
    assert try_number == 1
    assert celery.airflow is not None
    worker_proc = celery.airflow.procs[worker]
    assert _descends_from(pid, worker_proc.pid), f"pid {pid} is not a task process of {worker}"
    os.kill(pid, signal.SIGKILL)

    wait_until(lambda: api.get(base).json()["state"] == "up_for_retry", 120, "try 1 to be failed for retry", 0.5)
    celery.airflow.stop_component(worker)  # that worker is gone: the retry can only run on the other
    state = celery.wait_run(DAG_ID, run_id, 300)
    ti = api.get(base).json()
    tries = _tries(shared)
    assert state == "success", celery.task_log(DAG_ID, run_id, "campaign")[-4000:]
    assert ti["try_number"] == 2 and [t for t, _, _ in tries] == [1, 2]
    assert tries[1][2] != worker, f"the retry ran on {tries[1][2]}, the stopped worker"

    # The held portion ends by itself (and may still land): wait for it before reading the provider.
    held = {f["id"] for f in httpx.get(f"{url}/_sandbox/faults", timeout=10).json()["faults"] if f["hits"]}
    wait_until(lambda: held <= {r["fault"] for r in httpx.get(f"{url}/_sandbox/requests", timeout=10).json()["items"]},
               HOLD + 30, "the held request to end", 0.5)  # fmt: skip
    campaigns = sandbox_state(url, "mobizon")["campaigns"]
    assert len(campaigns) == 1, [c["id"] for c in campaigns]
    (campaign,) = campaigns
    sent_to = Counter(m["to"] for m in campaign["messages"])
    assert [n for n, k in sent_to.items() if k > 1] == [], "recipients added twice"
    assert sorted(sent_to) == NUMBERS, f"lost: {len(set(NUMBERS) - set(sent_to))}"
    assert campaign["sendCalls"] == 1
    report = (shared / "rejected.csv").read_text()
    for value in INVALID:
        assert value in report, report


def test_no_secret_in_any_celery_log(celery: Deployment) -> None:
    found = []
    for path in log_files(celery):
        text = path.read_text(errors="replace")
        found += [f"{path.name}: {hit}" for hit in leaks(text, deployment_secrets(celery))]
        found += [f"{path.name}: a JWT" for _ in re.finditer(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}", text)]
    assert not found, "\n".join(found[:20])
