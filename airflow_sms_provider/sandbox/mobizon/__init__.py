"""The Mobizon API as a local server: ``/service/{module}/{method}`` (see reference/mobizon/).

Package layout: :mod:`.wire` (request parsing, answer encoding), :mod:`.rules` (limits,
number/text rules and field validation from the documents), :mod:`.state` (campaigns,
messages, tasks, contacts), :mod:`.sources` (recipient lists, cards, groups, files) and
:mod:`.handlers` (module/method handlers, routes). The names below are re-exported here.

Implemented: ``user/getOwnBalance``; ``campaign/create|addRecipients|send|get|getInfo|
getLinks|list|delete``; ``message/sendSmsMessage|getSMSStatus|list``;
``taskqueue/getStatus``. Any other module answers code 4, any other method code 5.

This module parses requests itself, as the real (PHP) server would, and keeps its own
copy of the response codes: it is the independent other half of the client codec in
``protocols/mobizon.py`` (importing that would also pull Airflow into the server).

Wire conventions the sandbox follows
    Every answer is HTTP 200 ``{"code", "data", "message"}``. Record data (get,
    getInfo, list items, getSMSStatus) carries numbers as strings ("123", "0.0000"),
    as Mobizon's database rows do; action results (create's id, send's status,
    sendSmsMessage, addRecipients' messageId, task ids) are integers as documented.
    Times are ``YYYY-MM-DD HH:MM:SS`` in UTC on the simulated clock.

Accounts
    ``SANDBOX_MOBIZON_API_KEY`` (balance 1000.0000 KZT) exists after every reset;
    more via ``POST /_sandbox/mobizon/accounts``. Campaigns, messages and tasks belong
    to the account that created them. An account whose ``domain`` is set and differs
    from the ``serving_domain`` config (and from the request's host name) gets code 13
    with that domain in ``data``; a blocked one gets 14. Sending charges
    ``segment_price`` per segment; deleting a campaign that has not started refunds it.

Deterministic rules (phone numbers are normalised by dropping every non-digit)
    * valid: 10-15 digits, not starting with 0, else per-recipient code 3;
    * ending in one of ``stop_list_suffixes`` (default "0000"): code 5 (stop list);
    * starting with one of ``restricted_prefixes`` (default none): code 6;
    * starting with one of ``unknown_operator_prefixes`` (default "999"): code 7;
    * final delivery status by suffix: "13" UNDELIV, "66" EXPIRED, "99" REJECTD,
      anything else DELIVRD;
    * a campaign whose text contains "moderate" (any case) goes to MODERATION
      (send answers 1) for ``moderation_delay`` simulated seconds; if the text also
      contains "decline" it then ends DECLINED with a moderator comment, else it
      is approved (READY_FOR_SEND) and runs.
    * sender (``from``): up to 11 Latin letters, digits, spaces, '.', '-' or '_',
      or up to 15 digits (an optional leading '+').

Lifecycle (computed from timestamps on every read; nothing runs in the background)
    send at T -> (MODERATION until T+moderation_delay ->) READY_FOR_SEND until
    start = max(approval + send_start_delay, deferredToTs) -> RUNNING: message i is
    ACCEPTD at start + (i+1)/rate, rate = min(send_rate, rateLimit/ratePeriod) per
    simulated second, ENQUEUD before that -> SENT once all are accepted -> final
    status ``delivery_delay`` later -> DONE when all are final. A declined campaign's
    messages stay NEW. Counters count ENQUEUD messages as NEW (there is no ENQUEUD
    counter). ``moderationStatus`` is null until the campaign is sent, then
    MODERATION, DECLINED, READY_FOR_SEND (approved) or AUTO_READY_FOR_SEND.

Contact book (the same for every account)
    cards: 101 Aigerim 77010000101 (also ``work`` 77020000101), 102 Daniyar
    77010000102, 103 Olga 77010000103, 104 Marat 77010000104, 105 Nobody (no mobile);
    fields ``mobile``, ``name``, ``city`` fill template placeholders.
    groups: 1 "Sandbox customers" = 101, 102, 103; 2 "Sandbox staff" = 103, 104, 105.
    ``recipientContacts``: "101" uses the card's mobile, "101:work" a named field;
    unknown card -> 30, card without mobile -> 31, unknown field -> 32.

Background tasks (groups and files, code 100)
    progress on the simulated clock at ``task_rows_per_second`` rows, at least one
    simulated second; recipients are added when the task completes (status 2). A
    file that cannot be decoded ends with status 3. While a task runs, the campaign is
    locked: addRecipients and send answer 10. ``taskqueue/getStatus`` polled again
    within ``taskqueue_min_interval`` real seconds answers 30. ``counters.totalMsgNum`` takes
    in what an import added progressively over ``counters_delay`` simulated seconds after the
    task completes (the documents: "updated during the processing (before sending)").

Files: CSV (``params[recipientsFile*]`` options honoured) or Excel "only XLS" read by xlrd
(the ``sandbox`` extra); any other format (.xlsx, .txt, ...) answers code 1. Template campaigns need a header row with a
``recipient`` column; the other headers name placeholders.

Big campaigns (benchmarks load a million recipients): messages are slotted objects;
a completed task's rows are dropped once added; counters of a campaign not yet sent
are counted, not walked; ``message/list`` of one campaign in id order (the usual
paging) slices instead of filtering and sorting every message, also with a
``statusUpdateTsFrom``/``To`` bound (an incremental report: the matching messages are
found by bisection, unless the campaign has a partially delivered one); form bodies are
parsed with a short cut for ``recipients%5B7%5D`` keys. Answers are unchanged.
"""

from airflow_sms_provider.sandbox.mobizon.handlers import HANDLERS, Call, admin_routes, new_state, routes, service
from airflow_sms_provider.sandbox.mobizon.rules import (
    CONTACT_CARDS,
    CONTACT_GROUPS,
    DEFAULT_BALANCE,
    DEFAULT_CURRENCY,
    DEFAULT_SENDER,
    DEFAULTS,
    NAME,
    PATH_PREFIXES,
    SANDBOX_MOBIZON_API_KEY,
    campaign_fields,
    country_of,
    fill_placeholders,
    final_status,
    segments,
)
from airflow_sms_provider.sandbox.mobizon.sources import rows_from_file
from airflow_sms_provider.sandbox.mobizon.state import Account, Campaign, Message, MobizonState, Row, Task
from airflow_sms_provider.sandbox.mobizon.wire import Invalid, Reply, Upload, parse_form, php_parse

__all__ = [
    "CONTACT_CARDS",
    "CONTACT_GROUPS",
    "DEFAULTS",
    "DEFAULT_BALANCE",
    "DEFAULT_CURRENCY",
    "DEFAULT_SENDER",
    "HANDLERS",
    "NAME",
    "PATH_PREFIXES",
    "SANDBOX_MOBIZON_API_KEY",
    "Account",
    "Call",
    "Campaign",
    "Invalid",
    "Message",
    "MobizonState",
    "Reply",
    "Row",
    "Task",
    "Upload",
    "admin_routes",
    "campaign_fields",
    "country_of",
    "fill_placeholders",
    "final_status",
    "new_state",
    "parse_form",
    "php_parse",
    "routes",
    "rows_from_file",
    "segments",
    "service",
]
