"""The fault-injection table run by ``test_faults.py`` (and listed in docs/reliability.md).

Each row names an operator chain (a key of ``test_faults.RUNS``), the sandbox fault rules
injected before it runs, and what must be true afterwards:

* ``tries``: how many times ``execute()`` runs, a retried Airflow task being modelled as
  another ``execute()`` with the same durable store. 1 means the operator's own retries
  (HTTP backoff, lookups) absorbed the fault.
* ``error``: for a task that must stop, a regex its last error matches; the task fails
  with ``AirflowFailException`` (no further retry) when ``fatal``.
* ``created``: campaigns / broadcasts / files the provider holds at the end; every
  recipient is in them exactly once, and the provider acted on exactly that many
  create and send calls (its request log, faults that swallowed a call not counted).

Faults are kept short (sub-second holds, a client read timeout shorter than the hold)
so the whole table runs in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# A client read timeout shorter than the hold of a ``timeout_after`` rule: the server
# acts, the client gives up before the answer.
READ_TIMEOUT = 0.3
HOLD = 0.6
# A lookup that fails on every attempt: two attempts per call (connection extra) and
# more faulted answers than that.
LOOKUP_ATTEMPTS = 2


def rule(path: str, action: str, **args: Any) -> dict[str, Any]:
    """A fault rule (see airflow_sms_provider/sandbox/faults.py); times defaults to 1."""
    return {"path": path, "action": action, **args}


def status(path: str, code: int, times: int = 1, **args: Any) -> dict[str, Any]:
    return rule(path, "http_status", status=code, times=times, **args)


def hold(path: str, **args: Any) -> dict[str, Any]:
    return rule(path, "timeout_after", seconds=HOLD, **args)


def ogangi_error(path: str, description: str, times: int = 1) -> dict[str, Any]:
    """An Ogangi ERROR answer (HTTP 200, the XML envelope) without running the handler."""
    body = (f'<?xml version="1.0" encoding="UTF-8"?><response><input>{path}</input><status>ERROR</status>'
            f"<description>{description}</description></response>")
    return rule(path, "http_status", status=200, body=body, times=times)


# An answer that is not the API's: the request may have been carried out behind the proxy.
PROXY_PAGE = "<html><body>502 upstream timed out (but maybe not before it acted)</body></html>"
TIMEOUT = {"timeout": READ_TIMEOUT}
LOOKUP_DOWN = {"timeout": READ_TIMEOUT, "retry_attempts": LOOKUP_ATTEMPTS}


@dataclass(frozen=True)
class Scenario:
    id: str
    provider: str  # mobizon | bsg | ogangi
    run: str  # key of test_faults.RUNS: the operator(s), or an example DAG
    where: str  # where the fault hits, in words (docs/reliability.md)
    faults: tuple[dict[str, Any], ...]
    outcome: str  # "retried" (absorbed in one try), "resumed" (a later try finishes), "failed"
    created: int  # campaigns / broadcasts / files at the provider at the end
    tries: int = 1
    error: str | None = None  # the last error, for outcome "failed"
    fatal: bool = False  # ... an AirflowFailException: Airflow does not retry it
    durable: bool = True  # a task_state_store (Airflow >= 3.3); False: older Airflow
    conn: dict[str, Any] = field(default_factory=dict)  # connection extras
    config: dict[str, Any] = field(default_factory=dict)  # sandbox provider config
    clock_speed: float = 0.0  # simulated seconds per real second (0: frozen)
    # BSG: "refused" = at least one 401 answered and a new login made; "renewed" = the token was
    # renewed during the run (a login or refresh after the first), whether BSG refused the old
    # one first or the hook saw it expire (which of the two happens depends on timing).
    relogins: str = ""

    def __str__(self) -> str:
        return self.id


MOBIZON = [
    # ---------------------------------------------------------------- one-step campaign
    Scenario("mz-campaign-create-503x2", "mobizon", "mobizon_campaign", "campaign/create: HTTP 503 twice",
             (status("campaign/create", 503, times=2),), "resumed", created=1, tries=3),
    Scenario("mz-campaign-create-timeout", "mobizon", "mobizon_campaign",
             "campaign/create: created, answer later than the read timeout",
             (hold("campaign/create"),), "retried", created=1, conn=TIMEOUT),
    Scenario("mz-campaign-create-timeout-list-down", "mobizon", "mobizon_campaign",
             "campaign/create unanswered and campaign/list failing for the whole try",
             (hold("campaign/create"), status("campaign/list", 503, times=LOOKUP_ATTEMPTS)),
             "resumed", created=1, tries=2, conn=LOOKUP_DOWN),
    Scenario("mz-campaign-create-timeout-no-store", "mobizon", "mobizon_campaign",
             "campaign/create unanswered, campaign/list failing; no durable state",
             (hold("campaign/create"), status("campaign/list", 503, times=LOOKUP_ATTEMPTS)),
             "resumed", created=1, tries=2, durable=False, conn=LOOKUP_DOWN),
    Scenario("mz-campaign-upload-503x3", "mobizon", "mobizon_campaign", "campaign/addRecipients: HTTP 503 three times",
             (status("addRecipients", 503, times=3),), "retried", created=1),
    Scenario("mz-campaign-upload-502-reset", "mobizon", "mobizon_campaign",
             "campaign/addRecipients: HTTP 502, then a connection reset",
             (status("addRecipients", 502), rule("addRecipients", "reset")), "retried", created=1),
    Scenario("mz-campaign-upload-timeout", "mobizon", "mobizon_campaign",
             "campaign/addRecipients: added, answer later than the read timeout",
             (hold("addRecipients"),), "retried", created=1, conn=TIMEOUT),
    Scenario("mz-campaign-upload-code30x3", "mobizon", "mobizon_campaign",
             "campaign/addRecipients: code 30 (rate limit) three times",
             (rule("addRecipients", "mobizon_code", code=30, times=3),), "retried", created=1),
    Scenario("mz-campaign-upload-code10x2", "mobizon", "mobizon_campaign",
             "campaign/addRecipients: code 10 (campaign locked) twice",
             (rule("addRecipients", "mobizon_code", code=10, times=2),), "retried", created=1),
    Scenario("mz-campaign-upload-portion2-500", "mobizon", "mobizon_campaign_1001",
             "campaign/addRecipients: portion 2 of 3 fails (one HTTP attempt per call)",
             (status("addRecipients", 500, skip=1),), "resumed", created=1, tries=2,
             conn={"retry_attempts": 1}),
    Scenario("mz-campaign-get-500x3", "mobizon", "mobizon_campaign", "campaign/get: HTTP 500 three times",
             (status("campaign/get$", 500, times=3),), "retried", created=1),
    Scenario("mz-campaign-send-503x2", "mobizon", "mobizon_campaign", "campaign/send: HTTP 503 twice",
             (status("campaign/send", 503, times=2),), "resumed", created=1, tries=3),
    Scenario("mz-campaign-send-timeout", "mobizon", "mobizon_campaign",
             "campaign/send: sent, answer later than the read timeout",
             (hold("campaign/send"),), "resumed", created=1, tries=2, conn=TIMEOUT),
    Scenario("mz-campaign-send-timeout-no-store", "mobizon", "mobizon_campaign",
             "campaign/send: sent, answer lost; no durable state",
             (hold("campaign/send"),), "resumed", created=1, tries=2, durable=False, conn=TIMEOUT),
    # ---------------------------------------------------------------- step by step
    Scenario("mz-steps-upload-code10-send-503", "mobizon", "mobizon_steps",
             "addRecipients: code 10 twice; campaign/send: HTTP 503",
             (rule("addRecipients", "mobizon_code", code=10, times=2), status("campaign/send", 503)),
             "resumed", created=1, tries=3),
    Scenario("mz-steps-upload-reset-send-timeout", "mobizon", "mobizon_steps",
             "addRecipients: connection reset twice; campaign/send: answer lost",
             (rule("addRecipients", "reset", times=2), hold("campaign/send")),
             "resumed", created=1, tries=3, conn=TIMEOUT),
    # ---------------------------------------------------------------- single SMS
    Scenario("mz-sms-timeout", "mobizon", "mobizon_sms", "message/sendSmsMessage: sent, answer lost",
             (hold("sendSmsMessage"),), "retried", created=1, conn=TIMEOUT),
    Scenario("mz-sms-503", "mobizon", "mobizon_sms", "message/sendSmsMessage: HTTP 503",
             (status("sendSmsMessage", 503),), "resumed", created=1, tries=2),
    Scenario("mz-sms-timeout-list-down", "mobizon", "mobizon_sms",
             "sendSmsMessage unanswered and message/list failing for the whole try",
             (hold("sendSmsMessage"), status("message/list", 503, times=LOOKUP_ATTEMPTS)),
             "resumed", created=1, tries=2, conn=LOOKUP_DOWN),
    Scenario("mz-sms-timeout-list-down-no-store", "mobizon", "mobizon_sms",
             "sendSmsMessage unanswered, message/list failing; no durable state",
             (hold("sendSmsMessage"), status("message/list", 503, times=LOOKUP_ATTEMPTS)),
             "resumed", created=1, tries=2, durable=False, conn=LOOKUP_DOWN),
    Scenario("mz-sms-code30x2", "mobizon", "mobizon_sms", "message/sendSmsMessage: code 30 twice",
             (rule("sendSmsMessage", "mobizon_code", code=30, times=2),), "retried", created=1),
]

BSG = [
    Scenario("bsg-bulk-502x2", "bsg", "bsg_bulk_one", "sms/send: HTTP 502 twice",
             (status("/sms/send$", 502, times=2),), "resumed", created=1, tries=3),
    Scenario("bsg-bulk-timeout", "bsg", "bsg_bulk", "sms/send (the 2nd of 3 campaigns): created, answer lost",
             (hold("/sms/send$", skip=1),), "retried", created=3, conn=TIMEOUT),
    Scenario("bsg-bulk-reset", "bsg", "bsg_bulk", "sms/send (the 3rd of 3 campaigns): connection reset",
             (rule("/sms/send$", "reset", skip=2),), "resumed", created=3, tries=2),
    Scenario("bsg-bulk-429x3", "bsg", "bsg_bulk", "sms/send: HTTP 429 (too many requests) three times",
             (status("/sms/send$", 429, times=3, body={"message": "Too Many Attempts."}),), "retried", created=3),
    Scenario("bsg-bulk-token-expires", "bsg", "bsg_bulk",
             "the JWT expires between two sms/send calls (401, then a new login)",
             (rule("/sms/send$", "delay", seconds=0.5, skip=1),), "retried", created=3,
             config={"jwt_ttl": 20}, clock_speed=100, relogins="refused"),
    Scenario("bsg-bulk-timeout-no-store", "bsg", "bsg_bulk",
             "sms/send (the 2nd of 3) answer lost and /api/messages failing; no durable state",
             (hold("/sms/send$", skip=1), status("/api/messages", 503, times=LOOKUP_ATTEMPTS)),
             "resumed", created=3, tries=2, durable=False, conn=LOOKUP_DOWN),
    Scenario("bsg-bulk-no-refs-timeout", "bsg", "bsg_bulk_no_refs",
             "sms/send without reference_ids (auto_reference_ids=False): created, answer lost",
             (hold("/sms/send$"),), "failed", created=1, tries=1, error="may exist", fatal=True, conn=TIMEOUT,
             clock_speed=100),  # the retry would come after BSG's duplicate window
    Scenario("bsg-bulk-no-refs-429-exhausted", "bsg", "bsg_bulk_no_refs",
             "sms/send without reference_ids: HTTP 429 three times, two attempts per try (the first try gives up)",
             (status("/sms/send$", 429, times=3, body={"message": "Too Many Attempts."}),), "resumed", created=1,
             tries=2, conn={"retry_attempts": 2}),  # refused outright: the retry creates it, no "may exist"
    Scenario("bsg-individual-500x2", "bsg", "bsg_individual", "sms/send-individual: HTTP 500 twice",
             (status("send-individual", 500, times=2),), "resumed", created=1, tries=3),
    Scenario("bsg-individual-timeout-lookup-down", "bsg", "bsg_individual",
             "sms/send-individual answer lost and /api/messages failing for the whole try",
             (hold("send-individual"), status("/api/messages", 503, times=LOOKUP_ATTEMPTS)),
             "resumed", created=1, tries=2, conn=LOOKUP_DOWN),
    Scenario("bsg-individual-401", "bsg", "bsg_individual", "sms/send-individual: HTTP 401 (token refused)",
             (status("send-individual", 401, body={"code": 401, "message": "Expired JWT Token"}),),
             "retried", created=1, relogins="refused"),
    Scenario("bsg-groups-429x2", "bsg", "bsg_groups", "sms/send-groups: HTTP 429 twice",
             (status("send-groups", 429, times=2, body={"message": "Too Many Attempts."}),), "retried", created=1),
    Scenario("bsg-groups-429-exhausted", "bsg", "bsg_groups",
             "sms/send-groups: HTTP 429 three times, two attempts per try (the first try gives up)",
             (status("send-groups", 429, times=3, body={"message": "Too Many Attempts."}),), "resumed", created=1,
             tries=2, conn={"retry_attempts": 2}),
    Scenario("bsg-groups-503", "bsg", "bsg_groups", "sms/send-groups: HTTP 503 (not created)",
             (status("send-groups", 503),), "failed", created=0, tries=2, error="may exist", fatal=True),
    Scenario("bsg-groups-timeout", "bsg", "bsg_groups", "sms/send-groups: created, answer lost",
             (hold("send-groups"),), "failed", created=1, tries=2, error="may exist", fatal=True, conn=TIMEOUT),
    Scenario("bsg-groups-not-json", "bsg", "bsg_groups", "sms/send-groups: HTTP 200 with a proxy's HTML page",
             (status("send-groups", 200, body=PROXY_PAGE),), "failed", created=0, tries=2, error="may exist",
             fatal=True),
    Scenario("bsg-groups-timeout-no-store", "bsg", "bsg_groups", "sms/send-groups: answer lost; no durable state",
             (hold("send-groups"),), "failed", created=1, tries=1, error="may exist", fatal=True,
             durable=False, conn=TIMEOUT),
]

OGANGI = [
    # An ERROR wording no document defines may mean it was done (issue 13): ambiguous, like a 503.
    Scenario("og-file-error", "ogangi", "ogangi_file", "sendSMSByFile: ERROR answer, undocumented wording",
             (ogangi_error("sendSMSByFile", "Service temporarily unavailable"),), "failed", created=0, tries=2,
             error="may have been sent", fatal=True),
    Scenario("og-file-503", "ogangi", "ogangi_file", "sendSMSByFile: HTTP 503",
             (status("sendSMSByFile", 503),), "failed", created=0, tries=2, error="may have been sent", fatal=True),
    Scenario("og-file-timeout-no-store", "ogangi", "ogangi_file", "sendSMSByFile: sent, answer lost; no durable state",
             (hold("sendSMSByFile"),), "failed", created=1, tries=1, error="may have been sent", fatal=True,
             durable=False, conn=TIMEOUT),
    Scenario("og-file-shortcodes-503x3", "ogangi", "ogangi_file", "getShortcodes: HTTP 503 three times",
             (status("getShortcodes", 503, times=3),), "retried", created=1),
    Scenario("og-broadcast-error", "ogangi", "ogangi_broadcast",
             "createBroadcastFromJson: ERROR answer, undocumented wording",
             (ogangi_error("createBroadcastFromJson", "Service temporarily unavailable"),),
             "failed", created=0, tries=2, error=r"'Fault drill'.*broadcast_id", fatal=True),
    Scenario("og-broadcast-429x2", "ogangi", "ogangi_broadcast", "createBroadcastFromJson: HTTP 429 twice",
             (status("createBroadcastFromJson", 429, times=2),), "retried", created=1),
    Scenario("og-broadcast-502", "ogangi", "ogangi_broadcast", "createBroadcastFromJson: HTTP 502",
             (status("createBroadcastFromJson", 502),), "failed", created=0, tries=2,
             error=r"'Fault drill'.*broadcast_id", fatal=True),
    Scenario("og-broadcast-reset", "ogangi", "ogangi_broadcast", "createBroadcastFromJson: connection reset",
             (rule("createBroadcastFromJson", "reset"),), "failed", created=0, tries=2,
             error=r"'Fault drill'.*broadcast_id", fatal=True),
    Scenario("og-broadcast-not-xml", "ogangi", "ogangi_broadcast",
             "createBroadcastFromJson: HTTP 200 with a proxy's HTML page",
             (status("createBroadcastFromJson", 200, body=PROXY_PAGE),), "failed", created=0, tries=2,
             error=r"'Fault drill'.*broadcast_id", fatal=True),
    Scenario("og-broadcast-timeout", "ogangi", "ogangi_broadcast", "createBroadcastFromJson: created, answer lost",
             (hold("createBroadcastFromJson"),), "failed", created=1, tries=2,
             error=r"'Fault drill'.*broadcast_id", fatal=True, conn=TIMEOUT),
    Scenario("og-broadcast-timeout-no-store", "ogangi", "ogangi_broadcast",
             "createBroadcastFromJson: created, answer lost; no durable state",
             (hold("createBroadcastFromJson"),), "failed", created=1, tries=1,
             error=r"'Fault drill'.*broadcast_id", fatal=True, durable=False, conn=TIMEOUT),
]

# Example DAGs run by dag.test(): the faults hit while Airflow runs every task.
EXAMPLES = [
    Scenario("dag-mobizon-example", "mobizon", "example_mobizon",
             "addRecipients: HTTP 503 x2, then code 30 x2; campaign/send answer lost (the task is retried once)",
             (status("addRecipients", 503, times=2), rule("addRecipients", "mobizon_code", code=30, times=2),
              hold("campaign/send")),
             "resumed", created=1, conn=TIMEOUT, clock_speed=3000),
    Scenario("dag-bsg-example", "bsg", "example_bsg",
             "send-individual: HTTP 429 x2; campaign reads: HTTP 502 x2; JWT expiring during the run",
             (status("send-individual", 429, times=2, body={"message": "Too Many Attempts."}),
              status(r"/api/campaigns/\d+", 502, times=2)),
             "retried", created=1, config={"jwt_ttl": 4, "send_rate": 10}, clock_speed=8, relogins="renewed"),
    Scenario("dag-ogangi-example", "ogangi", "example_ogangi",
             "getShortcodes: HTTP 503 x2; suspendBroadcast: answer lost; getBroadcast: HTTP 500 x2",
             (status("getShortcodes", 503, times=2), hold("suspendBroadcast"),
              status("getBroadcast", 500, times=2, skip=1)),
             "retried", created=1, conn=TIMEOUT),
]

SCENARIOS = [*MOBIZON, *BSG, *OGANGI]
