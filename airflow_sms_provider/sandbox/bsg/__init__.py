"""BSG One-API as a local server: ``/api/...`` (see reference/bsg/openapi.yaml).

Implemented: ``POST /api/auth/login``, ``POST /api/auth/refresh``,
``GET /api/accounts/balance``, ``POST /api/campaigns/sms/send``,
``POST /api/campaigns/sms/send-groups``, ``POST /api/campaigns/sms/send-individual``,
``GET /api/campaigns/{id}``, ``GET /api/campaigns/{id}/detail``,
``PATCH /api/campaigns/{id}/stop``, ``GET /api/messages``, and the campaign calls the
hooks do not use (every one BSG's SDK offers): ``POST /api/campaigns/price``, ``POST
/api/campaigns/send`` (the SMS channel), ``GET /api/campaigns``; the other channels'
campaign calls (``rcs/send``, ``rcs/send-groups``, ``viber/send``, ``whatsapp/send``)
answer 422 "The sandbox emulates the sms channel only.". Any other ``/api/`` path
answers 404 ``{"message": "Not Found"}``.

This module parses requests itself and keeps its own copy of the limits: it is the
independent other half of the client codec in ``protocols/bsg.py`` (importing that
would also pull Airflow into the server). Answers are shaped as the spec's schemas
(integers where it says integer, ``yyyy-mm-dd hh:mm:ss`` times in UTC on the
simulated clock), so the provider's generated SDK (``bsg-sdk``) can talk to it too.

Accounts and tokens
    ``SANDBOX_BSG_API_KEY`` (balance 100.00 USD) exists after every reset; ``POST
    /_sandbox/bsg/accounts {"api_key": ..., "balance": ...}`` adds another. Login
    answers ``{"bearer": <JWT>}``: HS256, ``iat``/``exp`` on the simulated clock,
    valid ``bsg_jwt_ttl`` simulated seconds (``POST /_sandbox/bsg/config
    {"jwt_ttl": 5}`` shortens it). ``Authorization: Bearer <JWT>`` (also the spec
    prose's ``Bearer: <JWT>``) is required everywhere else; a missing, invalid,
    revoked or expired token answers 401 ``{"code": 401, "message": ...}``. Refresh
    needs a token that has not expired yet and revokes it. ``POST
    /_sandbox/bsg/revoke`` revokes every token (the next call answers 401).

Validation (422 ``{"message": "The given data was invalid.", "errors": {path: [..]}}``,
field paths with separators dropped, as in the spec: ``phones0number``)
    phones/messages: 1-10,000 items; numbers are JSON integers of 9-15 digits;
    sender 3-11 printable Latin characters or 3-15 digits; text at most 765 GSM-7
    septets or 335 UCS-2 units; validity 1-72; tariff_code 0-9 and one of
    ``bsg_tariffs`` (else 422 "Tariff was not found"); start_at ``yyyy-mm-dd
    hh:mm:ss`` (ISO 8601 with 'T' too), not more than 5 minutes in the past, at
    most 30 days ahead; reference_id up to 32 letters/digits, unique in the request.
    Groups must exist and hold at most 10,000 contacts together.

Duplicates (429 ``{"message": "Too many duplicate request detected"}``)
    a reference_id used by any earlier message of the account, or the same path and
    body again within ``bsg_duplicate_window`` simulated seconds.

Lifecycle (computed from timestamps on every read; nothing runs in the background)
    created at T: ``creation`` until ``T + bsg_creation_delay`` (or ``scheduled``
    until ``start_at``), then ``sending``: message i is sent at start + (i+1)/rate
    (``bsg_send_rate`` per simulated second) and final ``bsg_delivery_delay`` later;
    ``done`` once every message is final. Final status by the number's ending:
    ``bsg_undelivered_suffixes`` (default "13") undelivered, ``bsg_expired_suffixes``
    ("66") expired, anything else delivered. Stop is allowed while scheduled, sending,
    paused or moderation (else 422 "Invalid campaign status"); messages not sent by
    then end ``failed``. ``POST /_sandbox/bsg/campaigns/{id}/status`` forces
    ``moderation``, ``paused`` or ``spam`` (no resume; spam is final, unsent messages
    ``failed``). Short statistics count ``sent`` (left, including delivered) and
    ``delivered``; the detail statistics count every message under its current status,
    so they add up to ``total_phones``.

Contact lists: 1864275 "Sandbox customers" (3 contacts), 1864276 "Sandbox staff"
(2), 1864277 "Sandbox huge list" (10,001: too many for one campaign). Contacts have
custom fields 12 (name) and 13 (city); a send-groups text's ``{12}``/``{13}`` take
them. Only ``{field_id}`` (numeric) is filled, the one form the documents give: a
``{name}`` stays literal, as it would at BSG.

Time zone: the account reads ``start_at`` (and ``filter[from]``/``filter[to]``) without
an offset as wall time in ``bsg_account_timezone`` (default UTC) and writes answers'
times in it; ``GET /_sandbox/bsg/state`` adds each campaign's ``start_at_utc``.

Messages list: a ``filter[...]`` the spec does not define, or a value its schema
refuses (``filter[id]`` < 1, a reference_id that is not 1-32 letters/digits, an
unreadable date), answers 422 instead of being ignored.

Price, generic send, list (see ``handlers.campaign_price``, ``campaign_send``, ``campaigns_list``)
    price: each distinct phone costs the text's parts times ``bsg_sms_price``; nothing is
    created or charged. Generic send: ``channels: ["sms"]`` only; phones (digit strings or
    bare numbers) and lists' contacts, one message per phone, text as written; ``dry_run``,
    short links, unsubscribe captions and transliteration are refused, not ignored. List:
    paged 30-500, sorted, filtered by creation time (to the second), type and a
    sender/name search; unknown or invalid criteria answer 422.

Campaign creation under load (``sms/send``, ``send-groups``, ``send-individual``, ``campaigns/send``; off by default)
    ``bsg_create_ms``: real milliseconds the server spends on each creation (an async
    wait before it is handled, during which the request counts as in flight).
    ``bsg_max_concurrent_creates``: a creation arriving while this many are in flight, or
    ``bsg_creates_per_second``: one more than this many in the last real second, answers
    429 ``{"message": "Too Many Requests"}`` with ``Retry-After: bsg_retry_after`` (seconds;
    null: no header) and does nothing: not even the duplicate check sees it. ``GET
    /_sandbox/bsg/state`` reports ``limits``: creations handled, rate-limited, in flight
    now and at most at once. Creations are atomic: the duplicate check and the creation
    run without a pause in between, under the state's lock.
"""

from airflow_sms_provider.sandbox.bsg.handlers import admin_routes, new_state, routes
from airflow_sms_provider.sandbox.bsg.state import DEFAULTS, BsgState
from airflow_sms_provider.sandbox.bsg.wire import NAME, PATH_PREFIXES, SANDBOX_BSG_API_KEY

__all__ = [
    "DEFAULTS",
    "NAME",
    "PATH_PREFIXES",
    "SANDBOX_BSG_API_KEY",
    "BsgState",
    "admin_routes",
    "new_state",
    "routes",
]
