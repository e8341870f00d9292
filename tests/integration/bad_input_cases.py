"""The bad-input cases of issue #5, one per provider where each applies (docs/bad-input.md).

Each :class:`Case` builds the operator that gets the bad input; ``test_bad_input.py`` runs
it against the sandbox and checks the error, the message and the provider's request log.
``missing`` marks a Mobizon check that is not there yet (the test is a strict xfail).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator, BsgIndividualCampaignOperator
from airflow_sms_provider.operators.mobizon import (
    MobizonAddRecipientsOperator,
    MobizonCampaignOperator,
    MobizonSendSmsOperator,
)
from airflow_sms_provider.operators.ogangi import (
    OgangiBroadcastActionOperator,
    OgangiCreateBroadcastOperator,
    OgangiSendSmsByFileOperator,
)

WRONG_DOMAIN = "api.mobizon.com.br"
MZ, MZ2 = "77011112233", "77011112234"  # valid Mobizon numbers (not on the sandbox's stop list)
BSG_PHONE = "380501234567"
OG = "14155550100"
LATIN1_CSV = "recipient,name\n77011112233,Ana\n77011112234,Jos\xe9\n".encode("latin-1")
HEADER_ONLY_CSV = b"recipient,name\n"


@dataclass
class Env:
    """What a case needs: the sandbox, connections to change, files to write."""

    url: str
    monkeypatch: pytest.MonkeyPatch
    tmp_path: Path

    def file(self, name: str, content: bytes = b"%PDF-1.4\n") -> str:
        path = self.tmp_path / name
        path.write_bytes(content)
        return str(path)

    def mobizon_campaign(self, text: str = "Hello", campaign_type: int = 2) -> int:
        from airflow_sms_provider.hooks.mobizon import MobizonHook

        hook = MobizonHook()
        try:
            return hook.create_campaign(text, campaign_type=campaign_type)
        finally:
            hook.close()

    def connection(self, provider: str, **changes: Any) -> None:
        """Replace fields of the provider's default connection (the fixtures' JSON)."""
        import json
        import os

        var = f"AIRFLOW_CONN_{provider.upper()}_DEFAULT"
        self.monkeypatch.setenv(var, json.dumps({**json.loads(os.environ[var]), **changes}))

    def mobizon_account(self, api_key: str, domain: str) -> None:
        httpx.post(f"{self.url}/_sandbox/mobizon/accounts", json={"api_key": api_key, "domain": domain}
                   ).raise_for_status()


@dataclass(frozen=True)
class Case:
    """One row of docs/bad-input.md."""

    id: str
    provider: str
    input: str  # what was wrong, for the table
    make: Callable[[Env], Any]  # the operator (setup done)
    field: str  # the field as the message names it
    shows: tuple[str, ...]  # the value or row numbers the message must quote
    error: type[Exception] = exc.SmsValidationError
    err_field: str | None = "="  # SmsValidationError.field; "=" means the same as ``field``
    reads: tuple[str, ...] = ()  # read requests the provider needs before refusing
    requests: int | None = None  # exact request count (credentials: the one refused call)
    via_dag: bool = False  # run through dag.test() with retries=2
    missing: str | None = None  # a Mobizon check still to write: strict xfail
    setup: Callable[[Env], None] | None = None  # e.g. a wrong key in the connection

    @property
    def expected_field(self) -> str | None:
        return self.field if self.err_field == "=" else self.err_field


def ahead(**delta: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(**delta)).isoformat()


def _c(op: type, **kw: Any) -> Callable[[Env], Any]:
    """A factory for ``op`` with fixed keyword arguments (``task_id`` added)."""
    return lambda env: op(task_id="bad", **kw)


def _brazil_account(env: Env) -> None:
    key = "BrazilKey0123456789abcdef0123456789abcdef"
    env.mobizon_account(key, WRONG_DOMAIN)
    env.connection("mobizon", password=key)




def _mobizon() -> list[Case]:
    campaign = MobizonCampaignOperator
    add = MobizonAddRecipientsOperator
    return [
        Case("mobizon-phone-invalid", "mobizon", "invalid number in the audience (one-step campaign)",
             _c(campaign, text="Hello", recipients=[MZ, "12345"]), "recipients", ("row 2", "'12345'")),
        Case("mobizon-phone-invalid-add", "mobizon", "invalid number in the audience",
             lambda env: add(task_id="bad", campaign_id=env.mobizon_campaign(), recipients=[MZ, "12345"]),
             "recipients", ("row 2", "'12345'"), reads=("campaign/get",)),
        Case("mobizon-phone-invalid-sms", "mobizon", "invalid number for one SMS",
             _c(MobizonSendSmsOperator, recipient="12345", text="Hi"), "recipient", ("'12345'",)),
        Case("mobizon-phone-empty-add", "mobizon", "empty number in the audience",
             lambda env: add(task_id="bad", campaign_id=env.mobizon_campaign(), recipients=[MZ, ""]),
             "recipients", ("row 2", "''", "empty"), reads=("campaign/get",)),
        Case("mobizon-all-invalid-skip-add", "mobizon", "every number invalid, on_invalid='skip'",
             lambda env: add(task_id="bad", campaign_id=env.mobizon_campaign(), recipients=["123", "456"],
                             on_invalid="skip"),
             "recipients", ("2 rejected",), reads=("campaign/get",)),
        Case("mobizon-empty-audience", "mobizon", "recipients=[]",
             _c(campaign, text="Hello", recipients=[]), "recipients", ("empty",)),
        Case("mobizon-empty-file", "mobizon", "a CSV file with a header and no rows",
             lambda env: campaign(task_id="bad", text="Hello", recipients=env.file("empty.csv", HEADER_ONLY_CSV)),
             "recipients", ("empty",)),
        Case("mobizon-two-recipient-types", "mobizon", "recipients and groups in one call",
             _c(add, campaign_id=1, recipients=[MZ], groups=[1]), "recipients", ("groups",)),
        Case("mobizon-placeholder-no-data-add", "mobizon", "template {name} without a value in a row",
             lambda env: add(task_id="bad", campaign_id=env.mobizon_campaign("Hi {name}", 3),
                             recipients=[{"recipient": MZ, "name": "Ana"}, {"recipient": MZ2}]),
             "recipients", ("row 2", "{name}"), reads=("campaign/get",)),
        Case("mobizon-placeholder-no-data", "mobizon", "template {name} without a value (one-step campaign)",
             _c(campaign, text="Hi {name}", campaign_type=3, recipients=[{"recipient": MZ}]),
             "recipients", ("row 1", "{name}")),
        Case("mobizon-template-without-placeholders", "mobizon", "campaign_type=3, rows with values, no {placeholder}",
             _c(campaign, text="Hello", campaign_type=3, recipients=[{"recipient": MZ, "name": "Ana"}]),
             "text", ("campaign_type=3",)),
        Case("mobizon-text-too-long", "mobizon", "text over the provider's limit (2000 characters)",
             _c(campaign, text="x" * 2000, recipients=[MZ], wait_for_completion=False), "text", ("2000",)),
        Case("mobizon-deferred-past", "mobizon", "deferred_to an hour ago",
             lambda env: campaign(task_id="bad", text="Hello", recipients=[MZ], deferred_to=ahead(hours=-1)),
             "deferred_to", ("in the past",)),
        Case("mobizon-deferred-too-soon", "mobizon", "deferred_to in 30 minutes (< 1 h)",
             lambda env: campaign(task_id="bad", text="Hello", recipients=[MZ], deferred_to=ahead(minutes=30)),
             "deferred_to", ("less than 1:00:00 ahead",)),
        Case("mobizon-deferred-too-far", "mobizon", "deferred_to in 15 days (> 14)",
             lambda env: campaign(task_id="bad", text="Hello", recipients=[MZ], deferred_to=ahead(days=15)),
             "deferred_to", ("14 days",)),
        Case("mobizon-campaign-type", "mobizon", "campaign_type=7",
             _c(campaign, text="Hello", campaign_type=7, recipients=[MZ]), "campaign_type", ("7",)),
        Case("mobizon-sender", "mobizon", "sender of 20 characters (Mobizon: ≤ 11 Latin or ≤ 15 digits)",
             _c(campaign, text="Hello", sender="Far too long sender!", recipients=[MZ]), "sender",
             ("'Far too long sender!'",)),
        Case("mobizon-file-format", "mobizon", "recipients='audience.pdf' (one-step campaign)",
             lambda env: campaign(task_id="bad", text="Hello", recipients=env.file("audience.pdf")),
             "source", (".pdf",)),
        Case("mobizon-file-format-add", "mobizon", "recipients='audience.pdf'",
             lambda env: add(task_id="bad", campaign_id=env.mobizon_campaign(), recipients=env.file("audience.pdf")),
             "source", (".pdf",), reads=("campaign/get",)),
        Case("mobizon-file-encoding-add", "mobizon", "a Latin-1 CSV read as UTF-8",
             lambda env: add(task_id="bad", campaign_id=env.mobizon_campaign("Hi {name}", 3),
                             recipients=env.file("latin1.csv", LATIN1_CSV)),
             "encoding", ("line 3", "row 2", "'utf-8'"), reads=("campaign/get",)),
        Case("mobizon-file-encoding", "mobizon", "a Latin-1 CSV read as UTF-8 (one-step campaign)",
             lambda env: campaign(task_id="bad", text="Hi {name}", recipients=env.file("latin1.csv", LATIN1_CSV)),
             "encoding", ("line 3", "row 2")),
        Case("mobizon-recipients-file-format", "mobizon", "recipients_file='audience.pdf' (uploaded as is)",
             lambda env: add(task_id="bad", campaign_id=env.mobizon_campaign(), wait_for_task=False,
                             recipients_file=env.file("audience.pdf")),
             "recipients_file", (".pdf",)),
        Case("mobizon-recipients-file-encoding", "mobizon", "recipients_file in Latin-1, file_encoding unset (UTF-8)",
             lambda env: add(task_id="bad", campaign_id=env.mobizon_campaign(), wait_for_task=False,
                             recipients_file=env.file("latin1.csv", LATIN1_CSV)),
             "encoding", ("line 3",)),
        Case("mobizon-wrong-key", "mobizon", "an API key Mobizon does not know",
             _c(campaign, text="Hello", recipients=[MZ]), "API key", ("code 8",), error=exc.SmsAuthError,
             err_field=None, requests=1, via_dag=True,
             setup=lambda env: env.connection("mobizon", password="WrongKey0123456789abcdef0123456789abcdef")),
        Case("mobizon-wrong-domain", "mobizon", f"a key registered on {WRONG_DOMAIN}",
             _c(campaign, text="Hello", recipients=[MZ]), "connection host", (WRONG_DOMAIN,),
             error=exc.SmsWrongDomainError, err_field=None, requests=1, setup=_brazil_account),
    ]


def _bsg() -> list[Case]:
    bulk = BsgBulkCampaignOperator
    ind = BsgIndividualCampaignOperator
    ok = {"text": "Hi", "sender": "MyShop"}
    return [
        Case("bsg-phone-invalid", "bsg", "invalid number in the audience",
             _c(bulk, recipients=[BSG_PHONE, "12345"], **ok), "recipients", ("row 2", "'12345'")),
        Case("bsg-phone-empty", "bsg", "empty number in the audience",
             _c(bulk, recipients=[BSG_PHONE, ""], **ok), "recipients", ("row 2", "''", "empty")),
        Case("bsg-all-invalid-skip", "bsg", "every number invalid, on_invalid='skip'",
             _c(bulk, recipients=["123", "456"], on_invalid="skip", **ok), "recipients", ("2 rejected",)),
        Case("bsg-empty-audience", "bsg", "recipients=[]", _c(bulk, recipients=[], **ok), "recipients", ("empty",)),
        Case("bsg-empty-file", "bsg", "a CSV file with a header and no rows",
             lambda env: bulk(task_id="bad", recipients=env.file("empty.csv", HEADER_ONLY_CSV), **ok),
             "recipients", ("no valid row",)),
        Case("bsg-placeholder-no-data", "bsg", "template {name} without a value in a row",
             _c(ind, recipients=[{"phone": BSG_PHONE}], text="Hi {name}", sender="MyShop"),
             "recipients", ("row 1", "{name}"), err_field="text"),
        Case("bsg-values-without-placeholders", "bsg", "rows with values, text without {placeholders}",
             _c(ind, recipients=[{"phone": BSG_PHONE, "name": "Ana"}], text="Hello", sender="MyShop"),
             "text", ("row 1", "name")),
        Case("bsg-text-too-long", "bsg", "text of 766 GSM-7 characters (> 765)",
             _c(bulk, recipients=[BSG_PHONE], text="x" * 766, sender="MyShop"), "text", ("766",)),
        Case("bsg-start-past", "bsg", "start_at an hour ago",
             lambda env: bulk(task_id="bad", recipients=[BSG_PHONE], start_at=ahead(hours=-1), **ok),
             "start_at", ("in the past",)),
        Case("bsg-start-too-far", "bsg", "start_at in 31 days (> 30)",
             lambda env: bulk(task_id="bad", recipients=[BSG_PHONE], start_at=ahead(days=31), **ok),
             "start_at", ("30 days",)),
        Case("bsg-sender", "bsg", "sender of 20 characters (BSG: 3-11, or 3-15 digits)",
             _c(bulk, recipients=[BSG_PHONE], text="Hi", sender="Far too long sender!"),
             "sender", ("'Far too long sender!'",)),
        Case("bsg-file-format", "bsg", "recipients='audience.pdf'",
             lambda env: bulk(task_id="bad", recipients=env.file("audience.pdf"), **ok), "source", (".pdf",)),
        Case("bsg-file-encoding", "bsg", "a Latin-1 CSV read as UTF-8",
             lambda env: ind(task_id="bad", recipients=env.file("latin1.csv", LATIN1_CSV), text="Hi {name}",
                             sender="MyShop"),
             "encoding", ("line 3", "row 2", "'utf-8'")),
        Case("bsg-wrong-key", "bsg", "an API key BSG does not know",
             _c(bulk, recipients=[BSG_PHONE], **ok), "API key", ("Password",), error=exc.SmsAuthError,
             err_field=None, requests=1, via_dag=True,
             setup=lambda env: env.connection("bsg", password="test_WrongKey0123456789")),
    ]


def _ogangi() -> list[Case]:
    cast = OgangiCreateBroadcastOperator
    by_file = OgangiSendSmsByFileOperator
    return [
        Case("ogangi-phone-invalid", "ogangi", "invalid number in the audience (broadcast)",
             _c(cast, text="Hi", recipients=[OG, "12345"]), "recipients", ("row 2", "'12345'")),
        Case("ogangi-phone-invalid-file", "ogangi", "invalid number in the audience (send by file)",
             _c(by_file, text="Hi", recipients=[OG, "12345"]), "recipients", ("row 2", "'12345'")),
        Case("ogangi-phone-empty", "ogangi", "empty number in the audience",
             _c(cast, text="Hi", recipients=[OG, ""]), "recipients", ("row 2", "''", "empty")),
        Case("ogangi-all-invalid-skip", "ogangi", "every number invalid, on_invalid='skip'",
             _c(cast, text="Hi", recipients=["123", "456"], on_invalid="skip"), "recipients", ("2 rejected",)),
        Case("ogangi-empty-audience", "ogangi", "recipients=[]", _c(cast, text="Hi", recipients=[]),
             "recipients", ("empty",)),
        Case("ogangi-empty-file", "ogangi", "a CSV file with a header and no rows",
             lambda env: by_file(task_id="bad", text="Hi", recipients=env.file("empty.csv", HEADER_ONLY_CSV)),
             "recipients", ("empty",)),
        Case("ogangi-placeholder-no-data", "ogangi", "template {name} without a value in a row (broadcast)",
             _c(cast, text="Hi {name}", recipients=[{"number": OG}]), "recipients", ("row 1", "{name}")),
        Case("ogangi-placeholder-no-data-file", "ogangi", "text uses {1}, the row has one value (send by file)",
             _c(by_file, text="Hi {0} {1}", recipients=[{"number": OG, "name": "Ana"}]), "text", ("row 1", "{1}")),
        Case("ogangi-values-without-placeholders", "ogangi", "rows with values, text without {placeholders}",
             _c(cast, text="Hello", recipients=[{"number": OG, "name": "Ana"}]), "text", ("row 1", "name")),
        Case("ogangi-values-without-placeholders-file", "ogangi", "rows with values, text without {0}",
             _c(by_file, text="Hello", recipients=[{"number": OG, "name": "Ana"}]), "text", ("row 1", "name")),
        Case("ogangi-scheduled-past", "ogangi", "scheduled_at an hour ago",
             lambda env: cast(task_id="bad", text="Hi", recipients=[OG], scheduled_at=ahead(hours=-1)),
             "scheduled_at", ("in the past",)),
        Case("ogangi-scheduled-too-far", "ogangi", "scheduled_at in 400 days (> 366, ours)",
             lambda env: cast(task_id="bad", text="Hi", recipients=[OG], scheduled_at=ahead(days=400)),
             "scheduled_at", ("366 days",)),
        Case("ogangi-unknown-action", "ogangi", "action='pause' (Ogangi has no campaign types)",
             _c(OgangiBroadcastActionOperator, action="pause", broadcast_id=1), "action", ("'pause'",)),
        Case("ogangi-shortcode", "ogangi", "shortcode not of this instance (broadcast)",
             _c(cast, text="Hi", recipients=[OG], shortcode="55555"), "shortcode", ("'55555'",),
             reads=("getShortcodes",)),
        Case("ogangi-sender-file", "ogangi", "sender (from) not of this instance (send by file)",
             _c(by_file, text="Hi", recipients=[OG], sender="55555"), "sender", ("'55555'", "row 1"),
             reads=("getShortcodes",)),
        Case("ogangi-file-format", "ogangi", "recipients='audience.pdf'",
             lambda env: cast(task_id="bad", text="Hi", recipients=env.file("audience.pdf")), "source", (".pdf",)),
        Case("ogangi-file-format-upload", "ogangi", "file_path='audience.pdf' (uploaded as is)",
             lambda env: by_file(task_id="bad", file_path=env.file("audience.pdf")), "file", (".pdf",)),
        Case("ogangi-file-encoding", "ogangi", "a Latin-1 CSV read as UTF-8",
             lambda env: cast(task_id="bad", text="Hi {name}", recipients=env.file("latin1.csv", LATIN1_CSV)),
             "encoding", ("line 3", "row 2", "'utf-8'")),
        Case("ogangi-file-encoding-upload", "ogangi", "file_path: a Latin-1 CSV (uploaded as is)",
             lambda env: by_file(task_id="bad", file_path=env.file("latin1.csv", LATIN1_CSV)),
             "encoding", ("line 3", "UTF-8")),
        Case("ogangi-wrong-key", "ogangi", "a private key that does not match the public key",
             _c(cast, text="Hi", recipients=[OG], shortcode="24365"), "private key", ("BAD_SIGNATURE",),
             error=exc.SmsAuthError, err_field=None, requests=1, via_dag=True,
             setup=lambda env: env.connection("ogangi", password="WRONG-PRIVATE-KEY-0000")),
    ]


CASES: list[Case] = [*_mobizon(), *_bsg(), *_ogangi()]

# What does not apply, for the table's notes: (provider, case, why).
NOT_APPLICABLE = [
    ("bsg, ogangi", "more than one recipient type in one call", "each operator takes one source"),
    ("bsg, ogangi", "account on another regional domain", "one API host per account (BSG) or per customer"),
    ("bsg", "unknown campaign type", "no campaign types; one operator per kind"),
    ("ogangi", "text over the provider's limit", "Ogangi documents no text limit"),
]
