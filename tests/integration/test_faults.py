"""Never twice, never lost: the campaign operators of every provider under injected faults.

Each scenario of ``fault_scenarios.py`` injects its fault rules into the sandbox, runs an
operator chain (a retried task is another ``execute()`` with the same durable store, and
a fresh operator, as a new Airflow try would be), and then checks the provider's side:
how many campaigns exist, that each recipient is in them exactly once, and how many
create and send calls the provider actually carried out, from its request log.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_sms_provider.exceptions import SmsAmbiguousError
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.operators.bsg import (
    BsgBulkCampaignOperator,
    BsgGroupsCampaignOperator,
    BsgIndividualCampaignOperator,
)
from airflow_sms_provider.operators.mobizon import (
    MobizonAddRecipientsOperator,
    MobizonCampaignOperator,
    MobizonSendCampaignOperator,
    MobizonSendSmsOperator,
)
from airflow_sms_provider.operators.ogangi import OgangiCreateBroadcastOperator, OgangiSendSmsByFileOperator
from tests.helpers import EXAMPLE_DAGS, DurableStore, load_example
from tests.integration.fault_scenarios import EXAMPLES, SCENARIOS, Scenario

MAX_TRIES = 4  # per task: a task with retries=3


@functools.cache
def _admin() -> httpx.Client:
    # One client for the admin calls: httpx.get() builds a TLS context per call (~60 ms).
    return httpx.Client(timeout=15)


def admin_get(url: str, what: str, **params: str) -> Any:
    response = _admin().get(f"{url}/_sandbox/{what}", params=params)
    response.raise_for_status()
    return response.json()


def admin_post(url: str, what: str, body: Any) -> Any:
    response = _admin().post(f"{url}/_sandbox/{what}", json=body)
    response.raise_for_status()
    return response.json()

# ------------------------------------------------------------------ Airflow stand-ins



class FakeTI:
    """The parts of a task instance the operators read (the run tag, XCom pushes)."""

    dag_id, run_id, map_index = "fault_drill", "manual__2026-01-01T00:00:00+00:00", -1

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@dataclass
class Step:
    task_id: str
    make: Callable[[], Any]  # a new operator per try, as a new Airflow try would build


@dataclass
class Chain:
    """The tasks of a scenario, run in order, and the recipients the provider must hold."""

    steps: list[Step]
    audience: list[Any] | None  # None: not known up front (contact lists)
    per_campaign: int | None = None  # recipients per campaign when the audience is not known


@dataclass
class Outcome:
    tries: int = 0
    error: BaseException | None = None
    results: list[Any] = field(default_factory=list)


def run_chain(chain: Chain, durable: bool) -> Outcome:
    """Each task until it succeeds, fails for good (AirflowFailException) or uses MAX_TRIES."""
    outcome = Outcome()
    for step in chain.steps:
        store = DurableStore() if durable else None
        for _ in range(MAX_TRIES):
            outcome.tries += 1
            context: dict[str, Any] = {"ti": FakeTI(step.task_id)}
            if store is not None:
                context["task_state_store"] = store
            try:
                outcome.results.append(step.make().execute(context))
                outcome.error = None
                break
            except AirflowFailException as err:
                outcome.error = err
                return outcome
            except Exception as err:  # Airflow retries anything else
                outcome.error = err
        if outcome.error is not None:
            return outcome
    return outcome


# ------------------------------------------------------------------ the operator chains


def mobizon_numbers(count: int, start: int = 1) -> list[str]:
    return [f"7701{start + i:07d}" for i in range(count)]


def bsg_phones(count: int) -> list[str]:
    return [str(380500000100 + i) for i in range(count)]


OGANGI_NUMBERS = ["14155550100", "14155550101", "584125550102"]


def mobizon_campaign(count: int) -> Callable[[str], Chain]:
    def build(url: str) -> Chain:
        audience = mobizon_numbers(count)
        return Chain([Step("campaign", lambda: MobizonCampaignOperator(
            task_id="campaign", text="Fault drill", name="Fault drill", recipients=audience,
            wait_for_completion=False))], audience)  # fmt: skip

    return build


def mobizon_steps(url: str) -> Chain:
    hook = MobizonHook()
    try:
        campaign_id = hook.create_campaign("Fault drill", name="Fault drill steps")  # before the faults
    finally:
        hook.close()
    audience = mobizon_numbers(12)
    return Chain([
        Step("add", lambda: MobizonAddRecipientsOperator(task_id="add", campaign_id=campaign_id,
                                                         recipients=audience)),
        Step("send", lambda: MobizonSendCampaignOperator(task_id="send", campaign_id=campaign_id)),
    ], audience)  # fmt: skip


def mobizon_sms(url: str) -> Chain:
    return Chain([Step("sms", lambda: MobizonSendSmsOperator(
        task_id="sms", recipient="+7 701 555 00 01", text="Your fault drill code is 4711"))], ["77015550001"])


def bsg_bulk(url: str) -> Chain:
    audience = bsg_phones(5)
    return Chain([Step("bulk", lambda: BsgBulkCampaignOperator(
        task_id="bulk", recipients=audience, text="Fault drill", sender="Vet klinika", chunk_size=2))],
        [int(p) for p in audience])  # fmt: skip


def bsg_bulk_one(url: str) -> Chain:
    audience = bsg_phones(3)
    return Chain([Step("bulk", lambda: BsgBulkCampaignOperator(
        task_id="bulk", recipients=audience, text="Fault drill", sender="Vet klinika"))],
        [int(p) for p in audience])  # fmt: skip


def bsg_bulk_no_refs(url: str) -> Chain:
    audience = bsg_phones(3)
    return Chain([Step("bulk", lambda: BsgBulkCampaignOperator(
        task_id="bulk", recipients=audience, text="Fault drill", sender="Vet klinika", auto_reference_ids=False))],
        [int(p) for p in audience])  # fmt: skip


def bsg_individual(url: str) -> Chain:
    rows = [{"phone": p, "name": f"N{i}"} for i, p in enumerate(bsg_phones(3))]
    return Chain([Step("individual", lambda: BsgIndividualCampaignOperator(
        task_id="individual", recipients=rows, text="Hi {name}", sender="Vet klinika"))],
        [int(r["phone"]) for r in rows])  # fmt: skip


def bsg_groups(url: str) -> Chain:
    return Chain([Step("groups", lambda: BsgGroupsCampaignOperator(
        task_id="groups", groups=[1864275], text="Hi {12}", sender="Vet klinika"))], None, per_campaign=3)


def ogangi_file(url: str) -> Chain:
    return Chain([Step("file", lambda: OgangiSendSmsByFileOperator(
        task_id="file", recipients=OGANGI_NUMBERS, text="Fault drill", sender="24365"))], OGANGI_NUMBERS)


def ogangi_broadcast(url: str) -> Chain:
    return Chain([Step("broadcast", lambda: OgangiCreateBroadcastOperator(
        task_id="broadcast", text="Fault drill", recipients=OGANGI_NUMBERS, campaign_name="Fault drill"))],
        OGANGI_NUMBERS)  # fmt: skip


RUNS: dict[str, Callable[[str], Chain]] = {
    "mobizon_campaign": mobizon_campaign(12),
    "mobizon_campaign_1001": mobizon_campaign(1001),  # three portions of at most 500
    "mobizon_steps": mobizon_steps,
    "mobizon_sms": mobizon_sms,
    "bsg_bulk": bsg_bulk,  # three campaigns, created at once (the operator's default concurrency)
    "bsg_bulk_one": bsg_bulk_one,
    "bsg_bulk_no_refs": bsg_bulk_no_refs,
    "bsg_individual": bsg_individual,
    "bsg_groups": bsg_groups,
    "ogangi_file": ogangi_file,
    "ogangi_broadcast": ogangi_broadcast,
}

# ------------------------------------------------------------------ the provider's side

# The calls that create something or send, per provider: each must be carried out once.
MONEY_CALLS = {
    "mobizon": {"create": r"/campaign/create$", "send": r"/(campaign/send|message/sendSmsMessage)$"},
    "bsg": {"create": r"/api/campaigns/sms/send(-groups|-individual)?$"},
    "ogangi": {"create": r"/(createBroadcastFromJson|tools/sendSMSByFile)/"},
}
SINGLE_SMS_RUNS = ("mobizon_sms",)


def use_connection(provider: str, url: str, monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any]) -> None:
    """Point ``{provider}_default`` at the sandbox with fast retries plus ``extra``."""
    from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY
    from airflow_sms_provider.sandbox import ogangi as sandbox_ogangi
    from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY

    extras = {"retry_base_delay": 0.01, **extra}
    conn: dict[str, Any] = {"mobizon": {"conn_type": "mobizon", "host": url, "password": SANDBOX_MOBIZON_API_KEY},
                            "bsg": {"conn_type": "bsg", "host": url, "password": SANDBOX_BSG_API_KEY},
                            "ogangi": {"conn_type": "ogangi", "host": f"{url}/mmc",
                                       "login": sandbox_ogangi.SANDBOX_OGANGI_USER,
                                       "password": sandbox_ogangi.SANDBOX_OGANGI_PRIVATE_KEY}}[provider]
    if provider == "ogangi":
        extras.update(instance_id=sandbox_ogangi.SANDBOX_OGANGI_INSTANCE_ID,
                      public_key=sandbox_ogangi.SANDBOX_OGANGI_PUBLIC_KEY)
    monkeypatch.setenv(f"AIRFLOW_CONN_{provider.upper()}_DEFAULT", json.dumps({**conn, "extra": extras}))


def prepare(url: str, scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(scenario.provider, url, monkeypatch, scenario.conn)
    admin_post(url, "clock", {"speed": scenario.clock_speed})
    if scenario.config:
        admin_post(url, f"{scenario.provider}/config", scenario.config)


def inject(url: str, scenario: Scenario) -> None:
    admin_post(url, "faults", [{"provider": scenario.provider, **spec} for spec in scenario.faults])


def fault_rules(url: str) -> list[dict[str, Any]]:
    return list(admin_get(url, "faults")["faults"])


def requests_log(url: str, provider: str | None = None) -> list[dict[str, Any]]:
    return list(admin_get(url, "requests", **({"provider": provider} if provider else {}))["items"])


def settle(url: str, timeout: float = 10.0) -> None:
    """Wait until every held (timeout_after) answer has gone out and is in the request log.

    The server logs such a request when its late answer leaves: reading the log, or
    resetting the sandbox for the next test, before that would miss or misplace it.
    """
    deadline = time.monotonic() + timeout
    while True:
        held = {r["id"]: r["hits"] for r in fault_rules(url) if r["action"] == "timeout_after" and r["hits"]}
        logged = Counter(entry["fault"] for entry in requests_log(url) if entry["fault"] in held)
        if all(logged[rule_id] >= hits for rule_id, hits in held.items()):
            return
        assert time.monotonic() < deadline, f"held answers never logged: {held} vs {dict(logged)}"
        time.sleep(0.05)


def acted(url: str, provider: str) -> Counter[str]:
    """Money calls the provider carried out: its handler ran (no fault, or a late answer) and succeeded."""
    ran_anyway = {r["id"] for r in fault_rules(url) if r["action"] in ("timeout_after", "delay")}
    done: Counter[str] = Counter()
    for entry in requests_log(url, provider):
        if entry["fault"] is not None and entry["fault"] not in ran_anyway:
            continue
        succeeded = {"mobizon": entry["code"] == 0, "bsg": entry["status"] == 200,
                     "ogangi": entry["code"] == "OK"}[provider]  # fmt: skip
        for kind, pattern in MONEY_CALLS[provider].items():
            if succeeded and re.search(pattern, entry["path"]):
                done[kind] += 1
    return done


def check_provider_side(url: str, scenario: Scenario, chain: Chain) -> None:
    """What the provider holds: ``created`` objects, each recipient once, each create/send carried out once."""
    settle(url)
    n = scenario.created
    calls = acted(url, scenario.provider)
    if scenario.provider == "mobizon":
        campaigns = [c for c in admin_get(url, "mobizon/state")["campaigns"] if not c["deleted"]]
        assert len(campaigns) == n, [c["name"] for c in campaigns]
        assert [c["sendCalls"] for c in campaigns] == [1] * n, "each campaign sent exactly once"
        held = sorted(m["to"] for c in campaigns for m in c["messages"])
        creates = n if scenario.run not in SINGLE_SMS_RUNS else 0  # a single SMS makes its campaign itself
        assert (calls["create"], calls["send"]) == (creates, n), calls
    elif scenario.provider == "bsg":
        state = admin_get(url, "bsg/state")
        campaigns = state["campaigns"]
        assert len(campaigns) == n, [c["id"] for c in campaigns]
        held = sorted(m["phone"] for c in campaigns for m in c["messages"])
        assert calls["create"] == n, calls
        if scenario.relogins:
            auth = state["auth"]
            assert auth["logins"] + auth["refreshes"] >= 2, auth  # the token was renewed during the run
        if scenario.relogins == "refused":  # by the sandbox, or by a fault, then logged in again
            assert [e for e in requests_log(url, "bsg") if e["status"] == 401] and auth["logins"] >= 2, auth
    else:
        state = admin_get(url, "ogangi/state")
        if scenario.run == "ogangi_file":
            assert len(state["files"]) == n, state["files"]
            held = sorted(m["to"] for m in state["messages"])
        else:
            assert len(state["broadcasts"]) == n, state["broadcasts"]
            held = sorted(r["to"] for b in state["broadcasts"] for r in b["recipients"])
        assert calls["create"] == n, calls
    if chain.audience is not None:
        assert held == (sorted(chain.audience) if n else []), "each recipient exactly once"
    else:
        assert len(held) == len(set(held)) == n * (chain.per_campaign or 0), "each recipient exactly once"


# ------------------------------------------------------------------ the table


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_operator_under_fault(scenario: Scenario, sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    prepare(sandbox_url, scenario, monkeypatch)
    chain = RUNS[scenario.run](sandbox_url)
    inject(sandbox_url, scenario)

    outcome = run_chain(chain, durable=scenario.durable)

    if scenario.error is None:
        assert outcome.error is None, f"{type(outcome.error).__name__}: {outcome.error}"
    else:
        assert outcome.error is not None and re.search(scenario.error, str(outcome.error)), outcome.error
        assert isinstance(outcome.error, AirflowFailException) == scenario.fatal, type(outcome.error)
    check_provider_side(sandbox_url, scenario, chain)
    assert outcome.tries == scenario.tries
    unused = [r for r in fault_rules(sandbox_url) if r["times"] is not None and r["hits"] < r["times"]]
    assert not unused, f"faults that never hit: the scenario does not test what it says: {unused}"


# ------------------------------------------------------------------ example DAGs


def example_mobizon_audience() -> list[str]:
    """The example CSV's rows Mobizon accepts: 10-15 digits, not on the sandbox's stop list."""
    with open(EXAMPLE_DAGS / "data" / "mobizon_recipients.csv", newline="") as fh:
        numbers = ["".join(ch for ch in row["recipient"] if ch.isdigit()) for row in csv.DictReader(fh)]
    return [n for n in numbers if 10 <= len(n) <= 15 and not n.endswith("0000")]


@dataclass
class Example:
    file: str
    dag_id: str
    audience: Callable[[], list[Any]]
    retried_task: str | None = None  # given one retry: the fault makes its first try fail


EXAMPLE_RUNS = {
    "example_mobizon": Example("example_mobizon_campaign.py", "example_mobizon_campaign", example_mobizon_audience,
                               retried_task="send_campaign"),
    "example_bsg": Example("example_bsg_campaign.py", "example_bsg_campaign", lambda: [
        380661230001, 380661230002, 380661230013, 380661230066, 380661230005, 380661230007]),
    "example_ogangi": Example("example_ogangi_broadcast.py", "example_ogangi_broadcast", lambda: [
        "14155550101", "14155550102", "584125550103", "584125550104", "13055550105"]),
}


def ogangi_clock(url: str, run: str) -> Any:
    """The Ogangi example schedules ten minutes ahead: hold the clock, jump once it is resumed."""
    if run != "example_ogangi":
        return contextlib.nullcontext()
    from tests.e2e.test_example_ogangi import time_flies_after_resume

    return time_flies_after_resume(url)


@pytest.mark.parametrize("scenario", EXAMPLES, ids=str)
def test_example_dag_under_fault(
    scenario: Scenario, airflow_db: None, sandbox_url: str, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    example = EXAMPLE_RUNS[scenario.run]
    prepare(sandbox_url, scenario, monkeypatch)
    dag = load_example(example.file, example.dag_id)
    if "reject_report" in dag.params:
        dag.params["reject_report"] = str(tmp_path / "rejected.csv")
    if example.retried_task:
        task = dag.get_task(example.retried_task)
        task.retries, task.retry_delay = 1, dt.timedelta(0)
    inject(sandbox_url, scenario)

    with ogangi_clock(sandbox_url, scenario.run):
        run = dag.test()

    states = {ti.task_id: (str(ti.state), ti.try_number) for ti in run.get_task_instances()}
    assert str(run.state).endswith("success"), states
    if example.retried_task:
        assert states[example.retried_task][1] == 2, f"{example.retried_task} should need its retry: {states}"
    unused = [r for r in fault_rules(sandbox_url) if r["times"] is not None and r["hits"] < r["times"]]
    assert not unused, f"faults that never hit: {unused}"
    check_provider_side(sandbox_url, scenario, Chain([], example.audience()))


def test_sms_lookup_never_takes_another_runs_identical_message(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same text to the same number from another run is not this task's SMS: the tag tells them apart."""
    use_connection("mobizon", sandbox_url, monkeypatch, {})
    admin_post(sandbox_url, "clock", {"speed": 0})

    def sms() -> MobizonSendSmsOperator:
        return MobizonSendSmsOperator(task_id="sms", recipient="77015550001", text="Your order has shipped")

    yesterday = FakeTI("sms")
    yesterday.run_id = "scheduled__2025-12-31T00:00:00+00:00"
    sms().execute({"ti": yesterday, "task_state_store": DurableStore()})
    admin_post(sandbox_url, "faults", [{"provider": "mobizon", "path": "sendSmsMessage", "action": "http_status",
                                        "status": 503}])  # fmt: skip
    store = DurableStore()
    with pytest.raises(SmsAmbiguousError):  # nothing of this run's was found: not taken for sent
        sms().execute({"ti": FakeTI("sms"), "task_state_store": store})
    result = sms().execute({"ti": FakeTI("sms"), "task_state_store": store})  # the retry looks, then sends

    campaigns = admin_get(sandbox_url, "mobizon/state")["campaigns"]
    assert len(campaigns) == 2 and campaigns[0]["name"] != campaigns[1]["name"]
    assert all(c["name"].startswith("Airflow SMS campaign [af-") for c in campaigns)
    assert result["campaignId"] == campaigns[1]["id"] and result["status"] == 2
    lookups = [e for e in requests_log(sandbox_url, "mobizon") if e["path"].endswith("message/list")]
    assert len(lookups) == 2  # right after the lost answer, and before the retry sends


def test_docs_list_every_scenario() -> None:
    """docs/reliability.md is the table in words: every scenario is described there."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    missing = [s.id for s in [*SCENARIOS, *EXAMPLES] if f"`{s.id}`" not in text]
    assert not missing, f"docs/reliability.md lacks: {missing}"
