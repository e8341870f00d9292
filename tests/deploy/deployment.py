"""One deployment of the test: PostgreSQL (+ Redis for Celery), the sandbox and Airflow's components."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.deploy.services import Airflow, PostgreSQL, Redis, wait_until

# The sandbox's simulated clock x10, and deliveries that take 400 simulated seconds: campaigns end
# about 40 real seconds after they are sent, so every sensor finds its campaign still running and
# defers (with the sandbox's default 5 s they end before a real scheduler starts the sensor).
# Ogangi's broadcast alike: its 5 messages at one per 100 simulated seconds. Its start date (2 minutes
# ahead on the worker's clock) is already past on this clock, which by then runs minutes ahead: it
# starts at once, and the example's hold (suspend, resume) pauses it mid-way.
SANDBOX_CONFIG: dict[str, Any] = {"clock_speed": 10.0, "delivery_delay": 400.0, "bsg_delivery_delay": 400.0,
                                  "ogangi_send_rate": 0.01}


def sandbox_state(url: str, provider: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/_sandbox/{provider}/state", timeout=30)
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def connections(url: str) -> dict[str, str]:
    """The three ``AIRFLOW_CONN_*`` variables that point the default connections at the sandbox."""
    from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY
    from airflow_sms_provider.sandbox import ogangi as sandbox_ogangi
    from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY

    return {
        "AIRFLOW_CONN_MOBIZON_DEFAULT": json.dumps({"conn_type": "mobizon", "host": url,
                                                    "password": SANDBOX_MOBIZON_API_KEY}),
        "AIRFLOW_CONN_BSG_DEFAULT": json.dumps({"conn_type": "bsg", "host": url, "password": SANDBOX_BSG_API_KEY}),
        "AIRFLOW_CONN_OGANGI_DEFAULT": json.dumps({
            "conn_type": "ogangi", "host": f"{url}/mmc", "login": sandbox_ogangi.SANDBOX_OGANGI_USER,
            "password": sandbox_ogangi.SANDBOX_OGANGI_PRIVATE_KEY,
            "extra": {"instance_id": sandbox_ogangi.SANDBOX_OGANGI_INSTANCE_ID,
                      "public_key": sandbox_ogangi.SANDBOX_OGANGI_PUBLIC_KEY},
        }),
    }  # fmt: skip


class Deployment:
    """``with Deployment(executor=..., dags_folder=...) as d``: everything up, everything stopped after."""

    def __init__(self, executor: str, dags_folder: Path, workers: int = 0, extra_env: dict[str, str] | None = None,
                 sandbox_config: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.executor, self.dags_folder, self.workers = executor, dags_folder, workers
        self.extra_env = extra_env or {}
        self.sandbox_config = {**SANDBOX_CONFIG, **(sandbox_config or {})}
        # Outside pytest's 0700 temp root: PostgreSQL runs as another user and must reach its folder.
        self.workdir = Path(tempfile.mkdtemp(prefix="airflow-sms-deploy-"))
        self.workdir.chmod(0o755)
        self.postgres = PostgreSQL(self.workdir)
        self.redis: Redis | None = Redis(self.workdir) if executor == "CeleryExecutor" else None
        self.sandbox: Any = None
        self.airflow: Airflow | None = None
        self._api: httpx.Client | None = None
        self.jwt = ""

    def __enter__(self) -> Deployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        from airflow_sms_provider.sandbox import SandboxServer

        started = time.monotonic()
        self.postgres.start()
        self.postgres.create_database("airflow")
        # The warehouse of example_delivery_report: a database of its own on the same cluster.
        self.postgres.create_database("sms_reports")
        self.sandbox = SandboxServer(**self.sandbox_config).start()
        env = {**connections(self.sandbox.url), **self.extra_env}
        env["AIRFLOW_CONN_SMS_REPORTS_DB"] = json.dumps({"conn_type": "postgres", "host": "127.0.0.1",
                                                         "port": self.postgres.port, "login": "airflow",
                                                         "schema": "sms_reports"})  # fmt: skip
        if self.redis is not None:
            self.redis.start()
            env.update({
                "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.postgres.url("airflow"),
            })  # fmt: skip
        home = self.workdir / "airflow"
        home.mkdir()
        self.airflow = Airflow(home, self.postgres.url("airflow"), self.dags_folder, self.executor, env)
        self.airflow.airflow("db", "migrate")
        self.airflow.start_api_server()
        # --skip-serve-logs: every component shares one log folder here, and Airflow's log servers
        # would listen on every interface at fixed ports.
        self.airflow.start("scheduler", "scheduler", "--skip-serve-logs")
        self.airflow.start("dag-processor", "dag-processor")
        self.airflow.start("triggerer", "triggerer", "--skip-serve-logs")
        for n in range(1, self.workers + 1):
            self.airflow.start(f"worker-{n}", "celery", "worker", "--skip-serve-logs", "--concurrency", "1",
                               "--celery-hostname", f"worker{n}@%h", env={"DEPLOY_WORKER": f"worker-{n}"})  # fmt: skip
        self.jwt = self.airflow.token()
        self._api = httpx.Client(base_url=self.airflow.url, headers={"Authorization": f"Bearer {self.jwt}"},
                                 timeout=60)  # fmt: skip
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        if self._api is not None:
            self._api.close()
        if self.airflow is not None:
            self.airflow.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.sandbox is not None:
            self.sandbox.stop()
        self.postgres.stop()
        if not os.environ.get("DEPLOY_KEEP"):  # DEPLOY_KEEP=1 leaves the logs for a post-mortem
            shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def api(self) -> httpx.Client:
        assert self._api is not None
        return self._api

    def check_alive(self) -> None:
        assert self.airflow is not None
        self.airflow.check_alive()

    def component_log(self, name: str) -> str:
        assert self.airflow is not None
        return self.airflow.component_log(name)

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 240) -> None:
        """Until the dag-processor has parsed every one of ``dag_ids`` (an import error fails at once)."""

        def parsed() -> bool:
            self.check_alive()
            errors = self.api.get("/api/v2/importErrors").json().get("import_errors", [])
            assert not errors, errors
            known = {d["dag_id"] for d in self.api.get("/api/v2/dags", params={"limit": 100}).json()["dags"]}
            return set(dag_ids) <= known

        wait_until(parsed, timeout, f"the dag-processor to parse {dag_ids}", 2)

    def task_log(self, dag_id: str, run_id: str, task_id: str, pattern: str = "*.log") -> str:
        """A task's log files (every try; the triggerer's ``*.trigger.*.log`` too unless ``pattern`` says)."""
        assert self.airflow is not None
        paths = sorted(self.airflow.logs.glob(f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/{pattern}"))
        return "\n".join(p.read_text(errors="replace") for p in paths)

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        def ended() -> str | None:
            self.check_alive()
            state = self.api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
            return state if state in ("success", "failed") else None

        result: str = wait_until(ended, timeout, f"{dag_id} run {run_id} to end", 1)
        return result


def log_files(deployment: Deployment) -> list[Path]:
    """Every log a component or task wrote: the components' output and Airflow's log folder."""
    assert deployment.airflow is not None
    home = deployment.airflow.home
    return sorted([*home.glob("*.log"), *(p for p in deployment.airflow.logs.rglob("*") if p.is_file())])


def deployment_secrets(deployment: Deployment) -> set[str]:
    """The sandbox's keys and the deployment's own signing secrets."""
    from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY
    from airflow_sms_provider.sandbox import ogangi as sandbox_ogangi
    from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY

    assert deployment.airflow is not None
    env = deployment.airflow.env
    return {SANDBOX_MOBIZON_API_KEY, SANDBOX_BSG_API_KEY, sandbox_ogangi.SANDBOX_OGANGI_PRIVATE_KEY,
            env["AIRFLOW__API_AUTH__JWT_SECRET"], env["AIRFLOW__API__SECRET_KEY"]}  # fmt: skip
