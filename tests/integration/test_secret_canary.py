"""Issue 12, part 2: the canary run. Every example DAG, with keys holding ``+ / = % &``.

Each example DAG (the provider-neutral ones once per provider) runs with ``dag.test()``
against the sandbox, whose accounts are given these keys, and whose Mobizon and BSG answer
one call with "too many requests" quoting the key in every form (retried: the run still
succeeds, and the retry's warning is logged). Then no form of any secret
(tests/secret_forms.py: raw, percent-encoded in every style, form-encoded, JSON- and
HTML-escaped, base64) may show in: stdout/stderr, Python logging at DEBUG (the package,
httpx, httpcore, Airflow), task log files, trigger logs and the events triggers fire
(deferrable waits run their trigger in-process), XComs, rendered template fields, audit
log rows, trigger rows, the exception texts of failed tasks, and the SMS texts the sandbox
received. BSG's JWTs are secrets too: every token a session kept is looked for.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from airflow_sms_provider.sandbox import ogangi as sandbox_ogangi
from tests.conftest import mobizon_conn_uri
from tests.helpers import add_faults, load_example, sandbox_state, set_clock, task_states
from tests.integration.test_secrets import AIRFLOW_MASKER_IPC, database_records, debug_logging, log_files
from tests.secret_forms import HOSTILE_CHARS, echo, leaks

pytestmark = pytest.mark.e2e

MOBIZON_KEY = "Canary+Mobizon/Key=0%2F&x1a2b3c4d5e6f7g8h9Zq"
BSG_KEY = "test_Canary+Bsg/Key=5%3D&y0123456789"
OGANGI_PRIVATE = "Canary+Ogangi/Priv=7%2B&z-0123456789"
KEYS = {"mobizon": MOBIZON_KEY, "bsg": BSG_KEY, "ogangi": OGANGI_PRIVATE}
assert all(set(HOSTILE_CHARS) <= set(key) for key in KEYS.values())


@pytest.fixture
def hostile_keys(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The three default connections, pointing at the sandbox with the keys above."""
    httpx.post(f"{sandbox_url}/_sandbox/mobizon/accounts", json={"api_key": MOBIZON_KEY}).raise_for_status()
    httpx.post(f"{sandbox_url}/_sandbox/bsg/accounts", json={"api_key": BSG_KEY}).raise_for_status()
    httpx.post(f"{sandbox_url}/_sandbox/config", json={"ogangi_private_key": OGANGI_PRIVATE}).raise_for_status()
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri(sandbox_url, api_key=MOBIZON_KEY))
    monkeypatch.setenv("AIRFLOW_CONN_BSG_DEFAULT", json.dumps(
        {"conn_type": "bsg", "host": sandbox_url, "password": BSG_KEY, "extra": {"retry_base_delay": 0.01}}))
    monkeypatch.setenv("AIRFLOW_CONN_OGANGI_DEFAULT", json.dumps({
        "conn_type": "ogangi", "host": f"{sandbox_url}/mmc", "login": sandbox_ogangi.SANDBOX_OGANGI_USER,
        "password": OGANGI_PRIVATE,
        "extra": {"instance_id": sandbox_ogangi.SANDBOX_OGANGI_INSTANCE_ID,
                  "public_key": sandbox_ogangi.SANDBOX_OGANGI_PUBLIC_KEY, "retry_base_delay": 0.01},
    }))
    # A busy provider (or its proxy) answers once "slow down", quoting the key in every form:
    # the call is retried and the run succeeds, but the retry's warning reaches the task log.
    add_faults(
        sandbox_url,
        {"provider": "mobizon", "action": "mobizon_code", "code": 30, "skip": 1, "times": 1,
         "message": f"Too many requests for apiKey={quote(MOBIZON_KEY, safe='')}: {echo(MOBIZON_KEY)}"},
        {"provider": "bsg", "path": "/api/campaigns", "action": "http_status", "status": 429, "skip": 1,
         "times": 1, "body": {"message": f"Too many requests: {echo(BSG_KEY)}", "errors": {"key": [BSG_KEY]}}},
    )
    return sandbox_url


@pytest.fixture
def trigger_events(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The payload of every TriggerEvent made from now on (triggers run in-process in dag.test())."""
    from airflow.triggers.base import TriggerEvent

    payloads: list[Any] = []
    init = TriggerEvent.__init__

    def recording(self: Any, payload: Any, *args: Any, **kwargs: Any) -> None:
        payloads.append(payload)
        init(self, payload, *args, **kwargs)

    monkeypatch.setattr(TriggerEvent, "__init__", recording)
    return payloads


# ------------------------------------------------------------------ the runs


def _ogangi_clock(url: str) -> contextlib.AbstractContextManager[Any]:
    from tests.e2e.test_example_ogangi import time_flies_after_resume

    return time_flies_after_resume(url)


@contextlib.contextmanager
def _fast_clock(url: str, speed: float) -> Iterator[None]:
    set_clock(url, speed=speed)
    yield


def _bsg_short_tokens(url: str) -> contextlib.AbstractContextManager[Any]:
    # Tokens live 3 real seconds: the deferred wait outlives one, so the run logs in again.
    httpx.post(f"{url}/_sandbox/bsg/config", json={"jwt_ttl": 30}).raise_for_status()
    return _fast_clock(url, 10)


@contextlib.contextmanager
def _jump_when_triggered(url: str) -> Iterator[None]:
    """The neutral DAG's wait: the clock stands still, then jumps an hour once the trigger polls."""
    from airflow_sms_provider.triggers.campaign import SmsCampaignTrigger

    set_clock(url, speed=0)
    run = SmsCampaignTrigger.run

    async def jump(self: SmsCampaignTrigger) -> Any:
        set_clock(url, advance=3600)
        async for event in run(self):
            yield event

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SmsCampaignTrigger, "run", jump)
        yield


# (example file, dag id, run_conf, the clock while it runs, what its tasks should end as)
Case = tuple[str, str, dict[str, Any], Callable[[str], contextlib.AbstractContextManager[Any]], dict[str, str]]
CASES: dict[str, Case] = {
    "mobizon": ("example_mobizon_campaign.py", "example_mobizon_campaign", {},
                lambda url: _fast_clock(url, 600), {}),
    "bsg": ("example_bsg_campaign.py", "example_bsg_campaign", {}, _bsg_short_tokens, {}),
    "ogangi": ("example_ogangi_broadcast.py", "example_ogangi_broadcast", {}, _ogangi_clock, {}),
    **{
        f"any_provider-{p}": ("example_any_provider_campaign.py", "example_any_provider_campaign",
                              {"sms_conn_id": f"{p}_default"}, _jump_when_triggered, {})
        for p in KEYS
    },
    # The consumer half (example_delivery_events_consumer) sends nothing: no SMS to check here.
    "delivery_events_sender-mobizon": ("example_delivery_events_sender.py", "example_delivery_events_sender",
                                       {"sms_conn_id": "mobizon_default"}, contextlib.nullcontext, {}),
    **{
        f"notifier-{p}": ("example_sms_notifier.py", "example_sms_notifier", {"sms_conn_id": f"{p}_default"},
                          contextlib.nullcontext, {"extract": "success", "load": "failed"})
        for p in KEYS
    },
}


def _database_records(run: Any) -> list[str]:
    """The run's database rows as text (test_secrets), and proof they include rendered template fields."""
    out = database_records(run)
    assert any(line.startswith("rendered ") for line in out), "the run rendered no template field: nothing checked"
    return out


def _sms_texts(url: str) -> list[str]:
    """Every SMS text every provider of the sandbox received."""
    texts: list[str] = []
    for provider in KEYS:
        state = sandbox_state(url, provider)
        for campaign in state.get("campaigns") or state.get("broadcasts") or []:
            texts += [str(m.get("text")) for m in campaign.get("messages") or []]
            recipients = campaign.get("recipients") or []
            texts += [str(r.get("text")) for r in (recipients.values() if isinstance(recipients, dict) else recipients)
                      if isinstance(r, dict)]
            texts.append(str(campaign.get("text")))
        texts += [str(m.get("text")) for m in state.get("messages") or []]
    return texts


def _failure_texts(run: Any) -> list[str]:
    """What a failed task left: its state and, where Airflow keeps one, its error."""
    return [f"{ti.task_id} {ti.state} {getattr(ti, 'rendered_map_index', '')}" for ti in run.get_task_instances()]


@pytest.mark.parametrize("case", sorted(CASES))
def test_canary_every_example_dag_leaks_no_form_of_any_secret(
    case: str, airflow_db: None, hostile_keys: str, capfd: pytest.CaptureFixture[str], jwts: set[str],
    trigger_events: list[Any],
) -> None:
    url = hostile_keys
    filename, dag_id, run_conf, clock, expected_states = CASES[case]
    dag = load_example(filename, dag_id)
    started = time.time() - 1
    capfd.readouterr()
    with debug_logging() as recorder, clock(url):
        run = dag.test(run_conf=run_conf) if run_conf else dag.test()
    out, err = capfd.readouterr()
    states = task_states(run)
    if expected_states:
        assert states == expected_states, states
    else:
        assert str(run.state).endswith("success"), states

    texts = _sms_texts(url)
    assert any(text not in ("None", "") for text in texts), "the sandbox received no SMS: nothing was checked"
    captured = "\n".join([out, err, *recorder.lines, *log_files(started), *_database_records(run),
                          json.dumps(trigger_events, default=str), *texts, *_failure_texts(run)])
    haystack = "\n".join(line for line in captured.splitlines() if AIRFLOW_MASKER_IPC not in line)
    secrets = set(KEYS.values()) | jwts
    if "bsg" in case:
        assert jwts, "no BSG token was issued: the JWT was not checked"
    if "mobizon" in case or "bsg" in case:
        assert "Too many requests" in haystack, "the echoing answer was not captured: nothing was checked"
    assert not leaks(haystack, secrets)
