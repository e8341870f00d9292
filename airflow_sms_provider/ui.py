"""Connection form fields of the three connection types, in one table.

Airflow ≥ 3.2 reads ``conn-fields`` / ``ui-field-behaviour`` from provider info;
older UIs call the hook's ``get_connection_form_widgets`` / ``get_ui_field_behaviour``.
Both are generated from :data:`FORMS`, so the two UIs cannot drift apart.
"""

from __future__ import annotations

from typing import Any

_TIMEOUT = {"label": "Request timeout (s)", "type": "number", "default": 30,
            "description": "Seconds to wait for each API answer."}
_VERIFY = {"label": "Verify TLS certificates", "type": "boolean", "default": True,
           "description": "Leave on; turn off only for a proxy you trust."}
# A rate for estimates (SmsApprovalOperator); BSG prices through its API instead. A string, so the
# pre-3.2 forms (whole numbers only) keep a decimal rate.
_PRICE = {"label": "Price per SMS part", "type": "string",
          "description": "Decimal, e.g. 0.021: what one SMS part costs, for estimates before a send."}
_CURRENCY = {"label": "Currency of the price", "type": "string",
             "description": "ISO 4217 code of the price per part, e.g. KZT or USD."}
# Secret extras: a password input on the form (Airflow's UI and API mask them by their names too).
_SALT = {"label": "Delivery report salt", "type": "string", "sensitive": True,
         "description": "At least 16 characters: keys the recipients' hashes of SmsDeliveryReportOperator."}
_TIMEZONE = {"label": "Account time zone", "type": "string", "default": "UTC",
             "description": "IANA zone the account reads scheduled times in (e.g. Asia/Almaty)."}

# Port stays in every form: the connection list's Test button (Airflow >= 3.2) sends the stored
# port, or 0 when none is stored, and the API then refuses the test ("the host or port to test
# differs from the stored connection"). A stored port (443) makes Test work; see docs/connections.md.
_PORT = "443 (or the sandbox's port): lets the list's Test button work"

# Standard fields the hooks refuse when empty. The UI has no "required" flag for them, so their
# label says it; required extras get a schema without "null" (Airflow >= 3.2 marks those).
REQUIRED = " (required)"

FORMS: dict[str, dict[str, Any]] = {
    "mobizon": {
        "hidden": ["schema", "login"],
        "relabeling": {"host": "API domain" + REQUIRED, "password": "API key" + REQUIRED},
        "placeholders": {
            "host": "api.mobizon.kz (or a full URL, e.g. http://127.0.0.1:8765 for the sandbox)",
            "password": "40 or 70 character API key",
            "port": _PORT,
        },
        "extras": {
            "timeout": _TIMEOUT,
            "default_sender": {"label": "Default sender ID", "type": "string",
                               "description": "Sender (alpha name) used when a task names none."},
            "verify_ssl": _VERIFY,
            "timezone": _TIMEZONE,
            "price_per_part": _PRICE,
            "currency": _CURRENCY,
            "webhook_secret": {"label": "Webhook secret", "type": "string", "sensitive": True,
                               "description": "The secret set for Mobizon's webhooks: delivery events are checked "
                                              "against it."},
            "report_salt_secret": _SALT,
        },
    },
    "bsg": {
        "hidden": ["schema", "login"],
        "relabeling": {"host": "Base URL", "password": "API key" + REQUIRED},
        "placeholders": {"host": "https://one-api.bsg.world", "password": "live_... or test_...", "port": _PORT},
        "extras": {
            "timeout": _TIMEOUT,
            "verify_ssl": _VERIFY,
            "timezone": _TIMEZONE,
            "events_url": {"label": "Delivery events URL", "type": "string",
                           "description": "This Airflow's public base URL of the SMS events receiver, e.g. "
                                          "https://airflow.example.com/sms-events"},
            "callback_token": {"label": "Callback token", "type": "string", "sensitive": True,
                               "description": "At least 32 random characters: BSG's callbacks carry it in their "
                                              "URL (delivery_events=True)."},
            "report_salt_secret": _SALT,
        },
    },
    "ogangi": {
        "hidden": ["schema"],
        "relabeling": {"host": "Base URL" + REQUIRED, "login": "User name" + REQUIRED,
                       "password": "Private key" + REQUIRED},
        "placeholders": {"host": "https://customer.example.com/mmc", "password": "the account's private key",
                         "port": _PORT},
        "extras": {
            "instance_id": {"label": "Instance ID", "type": "integer", "required": True,
                            "description": "The MMC instance the requests act on."},
            "public_key": {"label": "Public key", "type": "string", "required": True,
                           "description": "Sent in every URL; the private key only signs."},
            "schedule_timezone": {"label": "Schedule time zone", "type": "string", "default": "UTC",
                                  "description": "Zone the MMC reads broadcast dates in (dd-MM-yyyy HH:mm)."},
            "timeout": _TIMEOUT,
            "verify_ssl": _VERIFY,
            "price_per_part": _PRICE,
            "currency": _CURRENCY,
        },
    },
}


def conn_fields(conn_type: str) -> dict[str, Any]:
    """``conn-fields`` for provider info (Airflow ≥ 3.2 connection form)."""
    fields = {}
    for name, spec in FORMS[conn_type]["extras"].items():
        # A type without "null" is how the ≥ 3.2 form knows a field must be filled.
        schema: dict[str, Any] = {"type": spec["type"] if spec.get("required") else [spec["type"], "null"]}
        if "default" in spec:
            schema["default"] = spec["default"]
        if spec.get("sensitive"):
            schema["format"] = "password"
        fields[name] = {"label": spec["label"], "description": spec["description"], "schema": schema}
    return fields


def provider_ui_behaviour(conn_type: str) -> dict[str, Any]:
    """``ui-field-behaviour`` for provider info (dash-separated keys)."""
    form = FORMS[conn_type]
    return {"hidden-fields": form["hidden"], "relabeling": form["relabeling"], "placeholders": form["placeholders"]}


def field_behaviour(conn_type: str) -> dict[str, Any]:
    """What the hook's ``get_ui_field_behaviour`` returns (underscore keys)."""
    form = FORMS[conn_type]
    return {"hidden_fields": form["hidden"], "relabeling": form["relabeling"], "placeholders": form["placeholders"]}


def widgets(conn_type: str) -> dict[str, Any]:
    """WTForms fields for UIs before Airflow 3.2 (the ``legacy-ui`` extra installs WTForms).

    Those UIs accept only String, Integer, Password and Boolean fields, so numbers
    are asked for as whole numbers there. Without WTForms the form falls back to
    the plain Extra JSON field, as it does for every provider.
    """
    try:
        from wtforms import BooleanField, IntegerField, PasswordField, StringField
    except ImportError:
        return {}
    try:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    except ImportError:  # the API server of Airflow 3.0/3.1 does not need the widget
        BS3TextFieldWidget = None
    kinds = {"number": IntegerField, "integer": IntegerField, "string": StringField, "boolean": BooleanField}
    out = {}
    for name, spec in FORMS[conn_type]["extras"].items():
        kind = PasswordField if spec.get("sensitive") else kinds[spec["type"]]
        kwargs: dict[str, Any] = {"description": spec["description"], "default": spec.get("default")}
        if kind is not BooleanField and BS3TextFieldWidget is not None:
            kwargs["widget"] = BS3TextFieldWidget()
        # Those UIs take no "required" from a widget (the API server reads only its type), so the label says it.
        out[name] = kind(spec["label"] + (REQUIRED if spec.get("required") else ""), **kwargs)
    return out
