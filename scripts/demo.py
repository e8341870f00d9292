"""`make demo`: run the Mobizon example DAG end to end on Airflow (SQLite) against the sandbox.

Starts the sandbox on 127.0.0.1 with a fast simulated clock, points the
``mobizon_default`` connection at it, runs ``example_mobizon_campaign`` with
``dag.test()`` and prints what happened to the campaign.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# SMS_DEMO_HOME: where Airflow's files go (the test of this script uses a temporary folder).
HOME = Path(os.environ.get("SMS_DEMO_HOME") or ROOT / ".airflow-demo")
HOME.mkdir(parents=True, exist_ok=True)
os.environ["AIRFLOW_HOME"] = str(HOME)
# Temporary files too (Airflow probes the temp folder on import): nothing of the demo lands in /tmp.
(HOME / "tmp").mkdir(exist_ok=True)
os.environ["TMPDIR"] = str(HOME / "tmp")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "example_dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{HOME / 'airflow.db'}"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

# Simulated seconds per real second: the campaign's minutes of sending and delivery pass in seconds.
SANDBOX_SPEED = 60.0


def migrate() -> None:
    print("» Preparing Airflow's SQLite database in .airflow-demo/ ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL
    )


def task_result(run: object, task_id: str, key: str = "return_value") -> object:
    """An XCom value (the return value unless ``key`` says otherwise) of one task of the finished run."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            # The key matters: campaign tasks also push their dashboard link (links.py).
            XComModel.get_many(run_id=run.run_id, key=key, dag_ids=run.dag_id,  # type: ignore[attr-defined]
                               task_ids=task_id)
        ).first()
        value = row.value if row is not None else None
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:  # a link's URL is stored as it is, not as JSON
        return value


def main() -> int:
    migrate()
    import httpx

    from airflow_sms_provider.hooks.mobizon import MobizonHook
    from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY, SandboxServer

    with SandboxServer(clock_speed=SANDBOX_SPEED) as sandbox:
        print(f"» Sandbox listening on {sandbox.url} (simulated clock x{SANDBOX_SPEED:.0f})", flush=True)
        os.environ["AIRFLOW_CONN_MOBIZON_DEFAULT"] = json.dumps(
            {"conn_type": "mobizon", "host": sandbox.url, "password": SANDBOX_MOBIZON_API_KEY}
        )
        import runpy

        dag = runpy.run_path(str(ROOT / "example_dags" / "example_mobizon_campaign.py"))["dag"]
        print("» Running example_mobizon_campaign with dag.test() ...", flush=True)
        started = time.monotonic()
        logging.getLogger("airflow").setLevel(logging.WARNING)
        # The example's reject report goes under AIRFLOW_HOME (here HOME), in the run's own folder.
        run = dag.test(logical_date=None)  # as a manual run
        elapsed = time.monotonic() - started

        state = httpx.get(f"{sandbox.url}/_sandbox/mobizon/state").json()
        campaigns = state.get("campaigns") or []
        print()
        print(f"DAG run {run.run_id}: {run.state} in {elapsed:.1f}s")
        if not campaigns:
            print("No campaign reached the sandbox.")
            return 1
        campaign = campaigns[-1] if isinstance(campaigns, list) else list(campaigns.values())[-1]
        campaign_id = campaign.get("id")
        hook = MobizonHook()
        info = hook.get_campaign_info(int(campaign_id))
        counters = info.get("counters") or {}
        messages = list(hook.iter_messages({"campaignIds": [int(campaign_id)]}))
        hook.close()
        print(f"Campaign {campaign_id} '{info.get('name')}': final status {info.get('commonStatus')}")
        upload = task_result(run, "add_recipients") or {}
        invalid = upload.get("invalid") or {}
        print(f"  recipients accepted: {upload.get('added', counters.get('totalMsgNum'))}")
        print(f"  recipients rejected by Mobizon: {upload.get('rejected', 0)}  "
              + ", ".join(f"{r['recipient']} ({r['reason']})" for r in upload.get("rejections", [])))
        print(f"  rows rejected before upload: {invalid.get('rejected', 0)}  "
              + ", ".join(f"row {e['row']} {e['value']!r} ({e['reason']})" for e in invalid.get("examples", []))
              + (f" -> {invalid['report_path']}" if invalid.get("report_path") else ""))
        print(f"  delivered: {counters.get('totalDelivrdMsgNum', 0)}   undelivered: "
              f"{counters.get('totalUndelivMsgNum', 0)}   expired: {counters.get('totalExpiredMsgNum', 0)}"
              f"   rejected by operator: {counters.get('totalRejectdMsgNum', 0)}")
        link = task_result(run, "create_campaign", key="mobizon_campaign_link")
        print(f"  the campaign's link in the Airflow UI (extra link): {link or '-'}")
        print("  messages:")
        for message in messages:
            print(f"    {message.get('to'):>15}  {message.get('status'):8}  {message.get('text')}")
        ok = str(run.state) in ("success", "DagRunState.SUCCESS") and info.get("commonStatus") == "DONE"
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
