"""The Ogangi Messangi MMC REST API as a local server, under ``/mmc/rest/api/…``.

Implemented: ``tools/sendSMSByFile`` (POST, multipart ``file``), ``getShortcodes``,
``createBroadcastFromJson`` (POST, form field ``to``), ``getBroadcast``,
``suspendBroadcast``, ``resumeBroadcast``, ``stopBroadcast`` (GET or POST) and
``DELETE …/broadcast/…``. The connection's Host is ``{sandbox url}/mmc``.

This package parses URLs, checks signatures and writes XML itself, as the real
server would: it is the independent other half of ``protocols/ogangi.py``
(importing that would also pull Airflow into the server). Where the provider's
documentation is silent it follows the same decisions as that module (the unit
tests check the shared tables are equal).

Accounts
    One instance, ``SANDBOX_OGANGI_INSTANCE_ID``, with user ``SANDBOX_OGANGI_USER``,
    key pair ``SANDBOX_OGANGI_PUBLIC_KEY`` / ``SANDBOX_OGANGI_PRIVATE_KEY`` and the
    short codes ``SANDBOX_OGANGI_SHORTCODES``; config ``ogangi_public_key`` /
    ``ogangi_private_key`` (``POST /_sandbox/config``) replace the key pair.

Every call
    The path is split on '/' before percent-decoding. The last two segments are the
    public key and the signature; the signature must be HMAC-SHA256 (private key)
    over the decoded parameters joined with '/', in hex. A wrong or unknown public
    key, or a wrong signature, answers ``BAD_SIGNATURE`` "Invalid signature, access
    denied" and changes nothing. An unknown method is HTTP 404, a wrong verb 405, a
    wrong number of parameters, an unknown instance or user ``ERROR``. Answers are
    HTTP 200 XML ``<input/><status/><description/>[<result/>]`` inside a root element
    named by the ``ogangi_xml_root`` config (default ``response``; empty: the rootless
    siblings the docs show). Times are ``yyyy-MM-dd'T'HH:mm:ss.SSS+00:00`` on the
    simulated clock.

sendSMSByFile
    CSV (UTF-8) or Excel, as the document says ("a File (text or excel)"): .xlsx read
    by openpyxl, legacy .xls (BIFF, OLE2) read by xlrd. Columns number, from, carrier,
    text, encoding, timezone, then ``{0}``, ``{1}``… values substituted in the text;
    a first row whose first cell is "number" is a header. Per row: a number that is
    not 10-15 digits is ``BAD_TO``; an encoding outside :data:`ENCODINGS` is
    ``BAD_ENCODING``; a ``from`` that is not one of the short codes is ``BAD_FROM``
    (empty: the first short code); an empty text ``NOT_SENT``; anything else
    ``SENT_TO_CARRIER``. Larger than ``ogangi_max_upload_bytes``: ``ERROR``.

Broadcasts (computed from timestamps on every read; nothing runs in the background)
    Recipients: a JSON array of ``{"to", "text", "params"}``. Each text is sent as
    written: the document never says the server fills ``{name}`` from ``params``, so
    the sandbox does not either (``params`` are kept, shown in the state, and unused).
    Any bad item fails the whole call with ``ERROR`` naming its position. Date
    ``dd-MM-yyyy HH:mm`` as wall time in ``ogangi_account_timezone`` (default UTC: no
    document names the zone), or ``null`` for
    now (+ ``ogangi_start_delay`` simulated seconds); a past date starts now.
    ``shortcodeIgnore`` true: the shortcode must be the instance's; false: the first
    one is used. Messages go out at ``ogangi_send_rate`` per simulated second.
    Status codes: 0 SCHEDULED, 1 RUNNING, 2 FINISHED, 3 SUSPENDED, 4 STOPPED.

    ===========  ===================================  ==========================
    call         allowed from                         result
    ===========  ===================================  ==========================
    edit (id)    SCHEDULED                            new recipients/text/date
    suspend      SCHEDULED, RUNNING                   SUSPENDED (progress kept)
    resume       SUSPENDED                            SCHEDULED or RUNNING
    stop         SCHEDULED, RUNNING, SUSPENDED        STOPPED, endDate = now
    delete       anything but RUNNING                 gone: later calls "not found"
    ===========  ===================================  ==========================

    Any other transition answers ``ERROR`` "Broadcast N cannot be … : it is X".

Admin: ``GET /_sandbox/ogangi/state`` (broadcasts with their recipients, messages
sent by file, counts of calls and bad signatures).

Layout (as ``sandbox/mobizon/`` and ``sandbox/bsg/``): ``wire`` (URL shape, methods,
signatures, XML answers, the tables shared with the protocol module), ``state``
(broadcasts and their lifecycle), ``rules`` (files, recipients, short codes, signature
and account checks), ``handlers`` (dispatch, the calls, admin routes). Every name the
single module had is re-exported here.
"""

from __future__ import annotations

from airflow_sms_provider.sandbox.ogangi.handlers import (
    HANDLERS,
    Call,
    admin_routes,
    admin_state,
    api,
    create_broadcast,
    delete_broadcast,
    get_broadcast,
    get_shortcodes,
    new_state,
    resume_broadcast,
    routes,
    send_sms_by_file,
    stop_broadcast,
    suspend_broadcast,
)
from airflow_sms_provider.sandbox.ogangi.state import (
    DEFAULTS,
    Broadcast,
    OgangiState,
)
from airflow_sms_provider.sandbox.ogangi.wire import (
    ABSENT,
    API_PATH,
    BAD_SIGNATURE,
    BAD_SIGNATURE_TEXT,
    BASE_PATH,
    BROADCAST_STATUSES,
    DATE_FORMAT,
    DEFAULT_CARRIER,
    DELETED,
    ENCODINGS,
    ERROR,
    FINISHED,
    INPUT_NAMES,
    MAX_KEPT_MESSAGES,
    MESSAGE_DESCRIPTIONS,
    METHODS,
    NAME,
    OK,
    PATH_PREFIXES,
    RUNNING,
    SANDBOX_CLIENT_ID,
    SANDBOX_OGANGI_INSTANCE_ID,
    SANDBOX_OGANGI_PRIVATE_KEY,
    SANDBOX_OGANGI_PUBLIC_KEY,
    SANDBOX_OGANGI_SHORTCODES,
    SANDBOX_OGANGI_USER,
    SCHEDULED,
    SMS_FILE_COLUMNS,
    STATUS_CODES,
    STOPPED,
    SUSPENDED,
    Failure,
    signature,
    xml_answer,
)

__all__ = [
    "ABSENT",
    "API_PATH",
    "BAD_SIGNATURE",
    "BAD_SIGNATURE_TEXT",
    "BASE_PATH",
    "BROADCAST_STATUSES",
    "DATE_FORMAT",
    "DEFAULTS",
    "DEFAULT_CARRIER",
    "DELETED",
    "ENCODINGS",
    "ERROR",
    "FINISHED",
    "HANDLERS",
    "INPUT_NAMES",
    "MAX_KEPT_MESSAGES",
    "MESSAGE_DESCRIPTIONS",
    "METHODS",
    "NAME",
    "OK",
    "PATH_PREFIXES",
    "RUNNING",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_OGANGI_INSTANCE_ID",
    "SANDBOX_OGANGI_PRIVATE_KEY",
    "SANDBOX_OGANGI_PUBLIC_KEY",
    "SANDBOX_OGANGI_SHORTCODES",
    "SANDBOX_OGANGI_USER",
    "SCHEDULED",
    "SMS_FILE_COLUMNS",
    "STATUS_CODES",
    "STOPPED",
    "SUSPENDED",
    "Broadcast",
    "Call",
    "Failure",
    "OgangiState",
    "admin_routes",
    "admin_state",
    "api",
    "create_broadcast",
    "delete_broadcast",
    "get_broadcast",
    "get_shortcodes",
    "new_state",
    "resume_broadcast",
    "routes",
    "send_sms_by_file",
    "signature",
    "stop_broadcast",
    "suspend_broadcast",
    "xml_answer",
]
