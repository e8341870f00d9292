"""A seeded, randomised chaos harness: every campaign operator of every provider, many schedules.

A *schedule* (drawn by :func:`draw` from one integer seed) picks an operator, an audience
(its form, size and duplicates, and whether a CSV file changes between tries), the fault
rules the sandbox injects at random requests, a worker "killed" at the N-th provider
request, two overlapping tries, and whether durable task state exists (Airflow >= 3.3).
:func:`run_schedule` runs tries until one succeeds, one fails without retry, or a try limit,
then asserts on the sandbox: every distinct recipient of the final audience got exactly one
message, or the task failed without retry naming what exists at the provider — never a
recipient messaged twice, never a silent loss. A failure carries the seed and a one-line
description, so ``CHAOS_SEED=<n>`` reruns that schedule alone.

The kill is in-process: a wrapper around ``httpx.Client.send`` and the sync hooks' lane
(``http11.Lane.exchange``) raises :class:`Killed`
(a ``BaseException``, so no ``except Exception`` of the operator sees it) before the N-th
request leaves or after the provider acted on it; from then on the durable store ignores
writes (what a SIGKILLed process writes in its ``finally`` blocks never lands), every
further request of that try dies too, and the lease it held names a process that is gone.
Real SIGKILLs: tests/integration/test_worker_killed.py.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_sms_provider import http11
from tests.helpers import DurableStore

_REAL_SEND = httpx.Client.send  # before any schedule wraps it (a hung schedule never unwraps its own)
_REAL_EXCHANGE = http11.Lane.exchange

# ------------------------------------------------------------------ what a schedule draws

KINDS = (
    "mz_campaign", "mz_sms", "mz_steps", "bsg_bulk", "bsg_individual", "og_file", "og_broadcast",
    "neutral_mobizon", "neutral_bsg", "neutral_ogangi",
)  # fmt: skip
PROVIDER = {
    "mz_campaign": "mobizon", "mz_sms": "mobizon", "mz_steps": "mobizon", "neutral_mobizon": "mobizon",
    "bsg_bulk": "bsg", "bsg_individual": "bsg", "neutral_bsg": "bsg",
    "og_file": "ogangi", "og_broadcast": "ogangi", "neutral_ogangi": "ogangi",
}  # fmt: skip
# The request that creates or sends: where an overlapping try's first try is held.
MONEY_PATH = {
    "mz_campaign": "campaign/create", "neutral_mobizon": "campaign/create", "mz_sms": "sendSmsMessage",
    "bsg_bulk": "/sms/send$", "bsg_individual": "send-individual", "neutral_bsg": "/sms/send$",
    "og_file": "sendSMSByFile", "og_broadcast": "createBroadcastFromJson", "neutral_ogangi": "createBroadcastFromJson",
}  # fmt: skip
# Paths worth aiming at besides "any request": the money calls and the lookups after them.
AIM = {
    "mobizon": ("campaign/create", "addRecipients", "campaign/send", "campaign/get", "campaign/list",
                "message/list", "sendSmsMessage"),
    "bsg": ("/sms/send", "send-individual", "/api/messages", "login", "campaigns"),
    "ogangi": ("sendSMSByFile", "createBroadcastFromJson", "getShortcodes", "broadcast"),
}  # fmt: skip
FORMS = ("list", "set", "shuffled", "generator", "csv", "csv_changed")
READ_TIMEOUT = 0.3  # shorter than a held answer: the provider acts, the client gives up
HOLD = 0.6
OVERLAP_TIMEOUT = 3.0  # overlapping tries: the first one's request is held 1 s, inside this
OVERLAP_HOLD = 1.0
TEXT = "Chaos drill"
SENDER = {"mobizon": None, "bsg": "Vet klinika", "ogangi": "24365"}


def _ogangi_ok(path: str) -> str:
    inside = "<broadcast>queued</broadcast>" if "roadcast" in path else "<messages/>"
    return (f'<?xml version="1.0" encoding="UTF-8"?><response><input>{path or "sendSMSByFile"}</input>'
            f"<status>OK</status><description>Completed</description><result>{inside}</result></response>")


LYING_DONE: dict[str, Any] = {
    "mobizon": lambda path: {"code": 0, "data": [], "message": ""},
    "bsg": lambda path: '{"data": "queued"}',  # as text: what a server writes, not judged by the contract plugin
    "ogangi": _ogangi_ok,
}


def ogangi_error_body(path: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><response><input>{path}</input><status>ERROR</status>'
            "<description>Service temporarily unavailable</description></response>")


NOT_USED_BY = {"mz_campaign": ("sendSmsMessage",), "neutral_mobizon": ("sendSmsMessage",),
               "mz_steps": ("sendSmsMessage",), "mz_sms": ("campaign/create", "addRecipients", "campaign/send"),
               "og_file": ("createBroadcastFromJson",), "og_broadcast": ("sendSMSByFile",),
               "neutral_ogangi": ("sendSMSByFile",)}  # fmt: skip


def _fault(rng: random.Random, kind: str) -> dict[str, Any]:
    """One fault rule at a random request of ``kind``'s provider (any request, or one aimed at a path)."""
    provider = PROVIDER[kind]
    aims = [p for p in AIM[provider] if p not in NOT_USED_BY.get(kind, ())]
    path = rng.choice(aims) if rng.random() < 0.6 else None
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("http_status", {"status": rng.choice([500, 502, 503])}),
        ("http_status", {"status": 429, "body": {"message": "Too Many Attempts."}}),
        ("reset", {}),
        ("timeout_after", {"seconds": HOLD}),
        ("trickle", {"seconds": 0.2}),
        ("answer_instead", {"status": 200, "body": "<html>502 upstream timed out</html>"}),
        ("answer_instead", {"status": rng.choice([500, 504])}),
        ("delay", {"seconds": 0.05}),
    ]
    if provider == "mobizon":
        kinds.append(("mobizon_code", {"code": rng.choice([30, 10]), "message": "chaos"}))
    elif provider == "bsg":
        kinds.append(("http_status", {"status": 401, "body": {"code": 401, "message": "Expired JWT Token"}}))
    else:
        kinds.append(("http_status", {"status": 200, "body": ogangi_error_body(path or "sendSMSByFile")}))
    # "Done", with data that lies (the handler ran): another shape, or no result for any recipient.
    kinds.append(("answer_instead", {"status": 200, "body": LYING_DONE[provider](path or "")}))
    action, args = rng.choice(kinds)
    times = 1 if action in ("timeout_after", "trickle") else rng.randint(1, 2)
    return {"provider": provider, "path": path, "action": action, "skip": rng.randint(0, 6), "times": times, **args}


@dataclass
class Schedule:
    seed: int
    kind: str
    size: int  # distinct recipients
    form: str
    duplicates: int  # extra rows repeating a number (some in another spelling)
    durable: bool  # a task_state_store (Airflow >= 3.3)
    retry_attempts: int
    faults: list[dict[str, Any]]
    kill_at: int | None  # the N-th provider request of the schedule is where the worker dies
    kill_after: bool  # ... after the provider acted on it (else before it left)
    overlap: bool  # try 2 starts while try 1's create/send is held
    chunk_size: int = 0  # BSG

    @property
    def provider(self) -> str:
        return PROVIDER[self.kind]

    def describe(self) -> str:
        def rule(f: dict[str, Any]) -> str:
            arg = f.get("status") or f.get("code")
            return f"{f['action']}{f'({arg})' if arg else ''}@{f['path'] or '*'}+{f['skip']}x{f['times']}"

        faults = ", ".join(rule(f) for f in self.faults) or "none"
        kill = f"kill@{self.kill_at}{'-after' if self.kill_after else '-before'}" if self.kill_at else "no kill"
        return (f"seed={self.seed} {self.kind} size={self.size} form={self.form} dups={self.duplicates} "
                f"{'durable' if self.durable else 'no-store'} attempts={self.retry_attempts} "
                f"{'overlap ' if self.overlap else ''}{kill} faults=[{faults}]"
                + (f" chunk={self.chunk_size}" if self.chunk_size else ""))


def draw(seed: int, kinds: tuple[str, ...] = KINDS) -> Schedule:
    rng = random.Random(seed)
    kind = rng.choice(kinds)
    provider = PROVIDER[kind]
    big = provider == "mobizon" and kind != "mz_sms" and rng.random() < 0.15
    size = 1 if kind == "mz_sms" else (rng.randint(501, 1100) if big else rng.randint(2, 25))
    form = "single" if kind == "mz_sms" else rng.choice(FORMS)
    duplicates = 0 if kind == "mz_sms" else rng.choice([0, 0, 1, 3])
    overlap = kind not in ("mz_steps",) and rng.random() < 0.15
    if overlap and form == "csv_changed":
        form = "csv"  # which of two overlapping tries read last is a race: keep the content
    durable = True if overlap else rng.random() < 0.7  # no store: nothing is shared, nothing to fence
    faults = [] if overlap and rng.random() < 0.5 else [_fault(rng, kind) for _ in range(rng.choice([0, 1, 1, 2, 3]))]
    if overlap:  # the overlap's own held request, and no answer held past the longer timeout
        faults = [f for f in faults if f["action"] not in ("timeout_after", "trickle")]
    kill_at = rng.randint(1, 10) if not overlap and rng.random() < 0.35 else None
    return Schedule(
        seed=seed, kind=kind, size=size, form=form, duplicates=duplicates, durable=durable,
        retry_attempts=rng.randint(1, 3), faults=faults, kill_at=kill_at, kill_after=rng.random() < 0.6,
        overlap=overlap, chunk_size=rng.randint(2, 6) if provider == "bsg" else 0,
    )  # fmt: skip


# ------------------------------------------------------------------ audiences


def numbers(provider: str, count: int, rng: random.Random) -> list[str]:
    """``count`` distinct valid numbers (Mobizon's sandbox stops numbers ending 0000)."""
    base = {"mobizon": 77010000000, "bsg": 380500000000, "ogangi": 14155500000}[provider]
    picked = rng.sample(range(1, 9999), count) if count < 9000 else list(range(1, count + 1))
    out = []
    for i in picked:
        n = base + i * 7 + 1
        out.append(str(n if not str(n).endswith("0000") else n + 1))
    return out


def other_spelling(number: str) -> str:
    return "+" + number if len(number) % 2 else f"+{number[:3]} {number[3:]}"


@dataclass
class Audience:
    """What each try reads: the rows, in an order and form that may change between tries."""

    schedule: Schedule
    base: list[str]  # distinct numbers of try 1
    changed: list[str] | None  # csv_changed: the numbers of later tries
    dups: list[tuple[int, str]]  # (position, spelling) of repeated rows
    workdir: Path
    offered: set[str] = field(default_factory=set)  # every number any try read
    last_read: int = 1  # the try that read the audience last

    @classmethod
    def make(cls, schedule: Schedule, workdir: Path) -> Audience:
        rng = random.Random(schedule.seed * 7 + 1)
        base = numbers(schedule.provider, schedule.size, rng)
        changed = None
        if schedule.form == "csv_changed":
            changed = list(base)
            changed[rng.randrange(len(changed))] = numbers(schedule.provider, 1, random.Random(-schedule.seed))[0]
            if changed == base or len(set(changed)) != len(changed):
                changed[0] = str(int(max(base)) + 3)
        dups = [(rng.randint(0, len(base)), rng.choice([n, other_spelling(n)]))
                for n in rng.sample(base, min(schedule.duplicates, len(base)))]
        return cls(schedule, base, changed, dups, workdir)

    def distinct(self, try_number: int) -> list[str]:
        return self.changed if self.changed is not None and try_number > 1 else self.base

    def rows(self, try_number: int) -> list[str]:
        out = list(self.distinct(try_number))
        if self.schedule.form in ("shuffled", "generator", "csv", "csv_changed", "set") and try_number > 1:
            random.Random(self.schedule.seed * 31 + try_number).shuffle(out)
        for pos, spelling in self.dups:
            if self.changed is None or spelling.lstrip("+").replace(" ", "") in out:
                out.insert(min(pos, len(out)), spelling)
        self.offered.update(self.distinct(try_number))
        self.last_read = try_number
        return out

    def value(self, try_number: int, personalised: bool) -> Any:
        """The ``recipients`` argument of one try."""
        rows = self.rows(try_number)
        form = self.schedule.form
        if form in ("csv", "csv_changed"):
            path = self.workdir / "audience.csv"  # rewritten in place between tries
            with open(path, "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["phone", "name"])
                writer.writerows([n, f"N{n[-3:]}"] for n in rows)
            return str(path)
        values: list[Any] = [{"phone": n, "name": f"N{n[-3:]}"} for n in rows] if personalised else rows
        if form == "set":
            return set(rows) if not personalised else values
        if form == "generator":
            return (v for v in values)
        return values


# ------------------------------------------------------------------ the kill


class Killed(BaseException):
    """The worker process dies here (not an Exception: the operator's handlers do not run)."""


class ChaosStore(DurableStore):
    """The durable store; after a kill it ignores writes until the next try starts."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen = False

    def set(self, key: str, value: Any) -> None:
        if not self.frozen:
            super().set(key, value)


def _dead_pid() -> int:
    """The pid of a process that ran on this host and is gone (what a killed worker's lease names)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


class Reaper:
    """Counts provider requests (not the sandbox admin API) and kills the try at the chosen one."""

    def __init__(self) -> None:
        self.count = 0
        self.kill_at: int | None = None
        self.after = False
        self.dead = False
        self.fired = False
        self.stores: list[ChaosStore] = []
        self._lock = threading.Lock()
        self._real = _REAL_SEND

    def install(self) -> None:
        reaper = self

        def send(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            return reaper._guard(request.url.path, lambda: reaper._real(client, request, **kwargs),
                                 lambda response: response.close())  # fmt: skip

        def exchange(lane: http11.Lane, method: str, url: httpx.URL, *args: Any, **kwargs: Any) -> http11.Answer:
            # The sync hooks' own HTTP/1.1 lane: the same count and the same kill as httpx's sends.
            return reaper._guard(url.path, lambda: _REAL_EXCHANGE(lane, method, url, *args, **kwargs))

        httpx.Client.send = send  # type: ignore[method-assign,assignment]
        http11.Lane.exchange = exchange  # type: ignore[method-assign]

    def _guard(self, path: str, call: Callable[[], Any], discard: Callable[[Any], None] = lambda _: None) -> Any:
        if path.startswith("/_sandbox/"):
            return call()
        with self._lock:
            if self.dead:
                raise Killed("a request of a killed try")
            self.count += 1
            fire = self.kill_at is not None and not self.fired and self.count == self.kill_at
            if fire:
                self.fired = True
                if not self.after:
                    self._die()
        if fire and self.after:
            discard(call())
            with self._lock:
                self._die()
        if fire:
            raise Killed(f"killed at provider request {self.count}")
        return call()

    def _die(self) -> None:
        self.dead = True
        for store in self.stores:
            store.frozen = True

    def uninstall(self) -> None:
        httpx.Client.send = self._real  # type: ignore[method-assign]
        http11.Lane.exchange = _REAL_EXCHANGE  # type: ignore[method-assign]

    def next_try(self) -> None:
        """The next try is a new process: the killed one's lease names a process that is gone."""
        with self._lock:
            if not self.dead:
                return
            self.dead = False
            pid = _dead_pid()
            for store in self.stores:
                store.frozen = False
                for key, value in store.values.items():
                    holder = value.get("holder") if key.endswith("_lease") and isinstance(value, dict) else None
                    if isinstance(holder, dict):
                        holder["pid"] = pid


# ------------------------------------------------------------------ operators


class FakeTI:
    """The parts of a task instance the operators read."""

    dag_id, map_index = "chaos", -1

    def __init__(self, task_id: str, run_id: str, try_number: int) -> None:
        self.task_id, self.run_id, self.try_number = task_id, run_id, try_number
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@dataclass
class Task:
    task_id: str
    make: Callable[[int], Any]  # try number -> a new operator


def tasks(schedule: Schedule, audience: Audience, made: dict[str, Any]) -> list[Task]:
    """The task(s) of a schedule; a step-by-step Mobizon chain passes the campaign id along."""
    from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator, BsgIndividualCampaignOperator
    from airflow_sms_provider.operators.campaign import SmsCampaignOperator
    from airflow_sms_provider.operators.mobizon import (
        MobizonAddRecipientsOperator,
        MobizonCampaignOperator,
        MobizonCreateCampaignOperator,
        MobizonSendCampaignOperator,
        MobizonSendSmsOperator,
    )
    from airflow_sms_provider.operators.ogangi import OgangiCreateBroadcastOperator, OgangiSendSmsByFileOperator

    kind, chunk = schedule.kind, schedule.chunk_size
    if kind == "mz_campaign":
        return [Task("send", lambda t: MobizonCampaignOperator(
            task_id="send", text=TEXT, name="Chaos", recipients=audience.value(t, False), wait_for_completion=False))]
    if kind == "mz_sms":
        return [Task("send", lambda t: MobizonSendSmsOperator(
            task_id="send", recipient=audience.value(t, False)[0], text="Your chaos code is 4711"))]
    if kind == "mz_steps":  # create, add, send: the later tasks read the created id (an XCom in a DAG)
        return [
            Task("create", lambda t: MobizonCreateCampaignOperator(task_id="create", text=TEXT, name="Chaos steps")),
            Task("add", lambda t: MobizonAddRecipientsOperator(
                task_id="add", campaign_id=made["campaign_id"], recipients=audience.value(t, False))),
            Task("send_campaign", lambda t: MobizonSendCampaignOperator(task_id="send_campaign",
                                                                        campaign_id=made["campaign_id"])),
        ]
    if kind == "bsg_bulk":
        return [Task("send", lambda t: BsgBulkCampaignOperator(
            task_id="send", recipients=audience.value(t, False), text=TEXT, sender="Vet klinika", chunk_size=chunk))]
    if kind == "bsg_individual":
        return [Task("send", lambda t: BsgIndividualCampaignOperator(
            task_id="send", recipients=audience.value(t, True), text="Hi {name}", sender="Vet klinika",
            chunk_size=chunk))]
    if kind == "og_file":
        return [Task("send", lambda t: OgangiSendSmsByFileOperator(
            task_id="send", recipients=audience.value(t, False), text=TEXT, sender="24365"))]
    if kind == "og_broadcast":
        return [Task("send", lambda t: OgangiCreateBroadcastOperator(
            task_id="send", text=TEXT, recipients=audience.value(t, False), campaign_name="Chaos"))]
    provider = PROVIDER[kind]
    options = {"bsg": {"chunk_size": chunk}} if provider == "bsg" else None
    return [Task("send", lambda t: SmsCampaignOperator(
        task_id="send", conn_id=f"{provider}_default", text=TEXT, recipients=audience.value(t, False),
        sender=SENDER[provider], name="Chaos", provider_options=options))]


# ------------------------------------------------------------------ the sandbox


def use_connections(url: str, schedule: Schedule) -> dict[str, str | None]:
    """Point every ``{provider}_default`` at the sandbox; returns the old values to restore."""
    from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY
    from airflow_sms_provider.sandbox import ogangi as og
    from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY

    extras = {"retry_base_delay": 0.01, "retry_attempts": schedule.retry_attempts,
              "timeout": OVERLAP_TIMEOUT if schedule.overlap else READ_TIMEOUT}
    conns = {
        "mobizon": {"conn_type": "mobizon", "host": url, "password": SANDBOX_MOBIZON_API_KEY, "extra": extras},
        "bsg": {"conn_type": "bsg", "host": url, "password": SANDBOX_BSG_API_KEY, "extra": extras},
        "ogangi": {"conn_type": "ogangi", "host": f"{url}/mmc", "login": og.SANDBOX_OGANGI_USER,
                   "password": og.SANDBOX_OGANGI_PRIVATE_KEY,
                   "extra": {**extras, "instance_id": og.SANDBOX_OGANGI_INSTANCE_ID,
                             "public_key": og.SANDBOX_OGANGI_PUBLIC_KEY}},
    }  # fmt: skip
    old: dict[str, str | None] = {}
    for name, conn in conns.items():
        key = f"AIRFLOW_CONN_{name.upper()}_DEFAULT"
        old[key] = os.environ.get(key)
        os.environ[key] = json.dumps(conn)
    return old


class Admin:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(timeout=30)

    def get(self, what: str, **params: str) -> Any:
        response = self.client.get(f"{self.url}/_sandbox/{what}", params=params)
        response.raise_for_status()
        return response.json()

    def post(self, what: str, body: Any = None) -> Any:
        response = self.client.post(f"{self.url}/_sandbox/{what}", json=body)
        response.raise_for_status()
        return response.json()

    def settle(self, timeout: float = 15.0) -> None:
        """Wait until every held answer has gone out (the provider acted before holding it)."""
        deadline = time.monotonic() + timeout
        while True:
            rules = self.get("faults")["faults"]
            late = ("timeout_after", "trickle", "delay")  # the provider acts, the answer goes out later
            held = {r["id"]: r["hits"] for r in rules if r["action"] in late and r["hits"]}
            logged = Counter(e["fault"] for e in self.get("requests")["items"] if e["fault"] in held)
            if all(logged[i] >= n for i, n in held.items()) or time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def messages(self, provider: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """Every message the provider sent, as (number, object id), and the objects' names by id."""
        state = self.get(f"{provider}/state")
        out: list[tuple[str, str]] = []
        names: dict[str, str] = {}
        if provider == "mobizon":
            for c in state["campaigns"]:
                names[str(c["id"])] = str(c.get("name") or "")
                out += [(str(m["to"]), str(c["id"])) for m in c["messages"]]
        elif provider == "bsg":
            for c in state["campaigns"]:
                names[str(c["id"])] = ""
                out += [(str(m["phone"]), str(c["id"])) for m in c["messages"]]
        else:
            for b in state["broadcasts"]:
                names[str(b["id"])] = str(b.get("name") or "")
                out += [(str(r["to"]), str(b["id"])) for r in b["recipients"]]
            out += [(str(m["to"]), "file") for m in state["messages"]]
            if state["messages"]:
                names["file"] = ""
        return out, names


# ------------------------------------------------------------------ running a schedule


@dataclass
class Result:
    schedule: Schedule
    outcome: str  # "sent" | "fatal" | "exhausted" | "hung"
    tries: int
    error: str = ""
    problems: list[str] = field(default_factory=list)
    killed: bool = False
    seconds: float = 0.0

    @property
    def survived(self) -> bool:
        return not self.problems

    def line(self) -> str:
        verdict = "ok" if self.survived else "FAIL: " + "; ".join(self.problems)
        return f"{self.schedule.describe()} -> {self.outcome} after {self.tries} tries: {verdict}"


def _is_fatal(err: BaseException) -> bool:
    return isinstance(err, AirflowFailException)


class _Try(threading.Thread):
    def __init__(self, run: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.run_it = run
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.run_it()
        except BaseException as err:  # judged by the caller
            self.error = err


def _context(task_id: str, run_id: str, try_number: int, store: ChaosStore | None) -> dict[str, Any]:
    ti = FakeTI(task_id, run_id, try_number)
    ctx: dict[str, Any] = {"ti": ti, "run_id": run_id}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


def run_schedule(url: str, schedule: Schedule, workdir: Path | None = None) -> Result:
    """Run ``schedule`` against the sandbox at ``url`` (reset first) and judge the provider's side."""
    started = time.monotonic()
    admin = Admin(url)
    admin.post("reset")
    admin.post("clock", {"speed": 0})
    old_env = use_connections(url, schedule)
    reaper = Reaper()
    reaper.kill_at, reaper.after = schedule.kill_at, schedule.kill_after
    reaper.install()
    own_dir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="chaos-")) if workdir is None else workdir
    audience = Audience.make(schedule, workdir)
    run_id = f"chaos__{schedule.seed}"
    limit = sum(int(f["times"]) for f in schedule.faults) + 4
    result = Result(schedule, "exhausted", 0)
    try:
        if schedule.faults:
            admin.post("faults", schedule.faults)
        made: dict[str, Any] = {"campaign_id": None}
        chain = tasks(schedule, audience, made)
        for task in chain:
            store = ChaosStore() if schedule.durable else None
            if store is not None:
                reaper.stores = [store]
            outcome, err, value, tries = _run_task(schedule, task, store, run_id, limit, reaper, admin)
            result.tries += tries
            if outcome != "sent":
                result.outcome, result.error = outcome, f"{type(err).__name__}: {err}"
                break
            if task.task_id == "create":
                made["campaign_id"] = value if not isinstance(value, dict) else value.get("campaign_id")
        else:
            result.outcome = "sent"
        result.killed = reaper.fired
        admin.settle()
        judge(admin, schedule, audience, result)
    finally:
        reaper.uninstall()
        os.environ.update({k: v for k, v in old_env.items() if v is not None})
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
        admin.client.close()
        if own_dir:
            for p in workdir.iterdir():
                p.unlink()
            workdir.rmdir()
    result.seconds = time.monotonic() - started
    return result


def _run_task(
    schedule: Schedule, task: Task, store: ChaosStore | None, run_id: str, limit: int, reaper: Reaper,
    admin: Admin,
) -> tuple[str, BaseException | None, Any, int]:
    """Tries of one task until it succeeds, fails without retry, or ``limit``: (outcome, error, value, tries)."""
    err: BaseException | None = None
    try_number = 0
    if schedule.overlap and store is not None:
        path = MONEY_PATH[schedule.kind]
        admin.post("faults", [{"provider": schedule.provider, "path": path, "action": "delay",
                               "seconds": OVERLAP_HOLD, "times": 1}])
        one = _Try(lambda: task.make(1).execute(_context(task.task_id, run_id, 1, store)))
        one.start()
        deadline = time.monotonic() + 30
        while one.is_alive() and time.monotonic() < deadline:
            rules = admin.get("faults")["faults"]
            if any(r["action"] == "delay" and r["seconds"] == OVERLAP_HOLD and r["hits"] for r in rules):
                break
            time.sleep(0.02)
        if not one.is_alive() and one.error is not None and _is_fatal(one.error):
            # Try 1 failed without retry before its held request: Airflow starts no other try, so none
            # overlaps (starting one anyway sent what try 1's error could not know of).
            return "fatal", one.error, None, 1
        time.sleep(0.2)  # inside the hold: try 1's request is in flight
        two = _Try(lambda: task.make(2).execute(_context(task.task_id, run_id, 2, store)))
        two.start()
        one.join(120)
        two.join(120)
        try_number = 2
        # Airflow took try 1 for dead when it started try 2: try 2's outcome is the task's (a stale try's
        # report is refused), and what try 1 still did is judged on the provider's side like the rest.
        if two.error is None:
            return "sent", None, two.result, try_number
        if _is_fatal(two.error):
            return "fatal", two.error, None, try_number
        err = two.error
    while try_number < limit:
        try_number += 1
        reaper.next_try()
        try:
            value = task.make(try_number).execute(_context(task.task_id, run_id, try_number, store))
            return "sent", None, value, try_number
        except Killed as killed:
            err = killed
        except Exception as exc:
            if _is_fatal(exc):
                return "fatal", exc, None, try_number
            err = exc
    return "exhausted", err, None, try_number


def run_guarded(url: str, schedule: Schedule, workdir: Path | None = None, limit: float = 90.0) -> Result:
    """:func:`run_schedule` in a thread; a schedule still running after ``limit`` seconds is a
    finding ("hung": a deadlock or a wait without end), reported instead of hanging the suite.
    Its threads are left blocked (daemons); the next schedule resets the sandbox and the wrappers."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = run_schedule(url, schedule, workdir)
        except BaseException as err:  # a harness error: reported with the seed
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True, name=f"chaos-{schedule.seed}")
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        httpx.Client.send = _REAL_SEND  # type: ignore[method-assign]
        http11.Lane.exchange = _REAL_EXCHANGE  # type: ignore[method-assign]
        return Result(schedule, "hung", 0, problems=[f"still running after {limit:.0f} s (a deadlock?)"],
                      seconds=limit)
    if "error" in box:
        raise box["error"]
    result: Result = box["result"]
    return result


def normalise(number: str) -> str:
    return re.sub(r"\D", "", number)


def judge(admin: Admin, schedule: Schedule, audience: Audience, result: Result) -> None:
    """The provider's side: nobody twice; success = everyone once; a stop names what exists."""
    sent, names = admin.messages(schedule.provider)
    counts = Counter(n for n, _ in sent)
    twice = sorted(n for n, c in counts.items() if c > 1)
    if twice:
        result.problems.append(f"{len(twice)} recipient(s) messaged more than once, e.g. {twice[:3]}")
    strangers = sorted(set(counts) - audience.offered)
    if strangers:
        result.problems.append(f"messages to numbers no try offered: {strangers[:3]}")
    if result.outcome == "sent":
        wanted = set(audience.distinct(audience.last_read))
        lost = sorted(wanted - set(counts))
        extra = sorted(set(counts) - wanted)
        if lost:
            result.problems.append(f"success, but {len(lost)} recipient(s) got nothing, e.g. {lost[:3]}")
        if extra:
            result.problems.append(f"success, but {len(extra)} number(s) not in the final audience got an SMS")
    elif result.outcome == "fatal":
        holders = sorted({obj for _, obj in sent})
        text = result.error
        unnamed = [h for h in holders if h != "file" and h not in text and (not names.get(h) or names[h] not in text)]
        if "file" in holders and not re.search(r"sent|may have been", text):
            unnamed.append("file")
        if unnamed and not re.search(r"may (exist|have been)", text):
            result.problems.append(f"stopped without naming what holds messages: {unnamed} ({text[:200]})")
    else:
        result.problems.append(f"never finished in {result.tries} tries: {result.error[:200]}")


def seeds_from_env(default: list[int]) -> list[int]:
    """``CHAOS_SEED=n[,m]`` reruns chosen schedules; otherwise ``default``."""
    chosen = os.environ.get("CHAOS_SEED")
    return [int(s) for s in chosen.split(",")] if chosen else default


def iterate(seeds: list[int]) -> Iterator[Schedule]:
    for seed in seeds:
        yield draw(seed)
