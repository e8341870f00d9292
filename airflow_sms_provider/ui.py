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
_TIMEZONE = {"label": "Account time zone", "type": "string", "default": "UTC",
             "description": "IANA zone the account reads scheduled times in (e.g. Asia/Almaty)."}

FORMS: dict[str, dict[str, Any]] = {
    "mobizon": {
        "hidden": ["schema", "login", "port"],
        "relabeling": {"host": "API domain", "password": "API key"},
        "placeholders": {
            "host": "api.mobizon.kz (or a full URL, e.g. http://127.0.0.1:8765 for the sandbox)",
            "password": "40 or 70 character API key",
        },
        "extras": {
            "timeout": _TIMEOUT,
            "default_sender": {"label": "Default sender ID", "type": "string",
                               "description": "Sender (alpha name) used when a task names none."},
            "verify_ssl": _VERIFY,
            "timezone": _TIMEZONE,
        },
    },
    "bsg": {
        "hidden": ["schema", "login", "port"],
        "relabeling": {"host": "Base URL", "password": "API key"},
        "placeholders": {"host": "https://one-api.bsg.world", "password": "live_... or test_..."},
        "extras": {"timeout": _TIMEOUT, "verify_ssl": _VERIFY, "timezone": _TIMEZONE},
    },
    "ogangi": {
        "hidden": ["schema", "port"],
        "relabeling": {"host": "Base URL", "login": "User name", "password": "Private key"},
        "placeholders": {"host": "https://customer.example.com/mmc", "password": "the account's private key"},
        "extras": {
            "instance_id": {"label": "Instance ID", "type": "integer",
                            "description": "The MMC instance the requests act on."},
            "public_key": {"label": "Public key", "type": "string",
                           "description": "Sent in every URL; the private key only signs."},
            "schedule_timezone": {"label": "Schedule time zone", "type": "string", "default": "UTC",
                                  "description": "Zone the MMC reads broadcast dates in (dd-MM-yyyy HH:mm)."},
            "timeout": _TIMEOUT,
            "verify_ssl": _VERIFY,
        },
    },
}


def conn_fields(conn_type: str) -> dict[str, Any]:
    """``conn-fields`` for provider info (Airflow ≥ 3.2 connection form)."""
    fields = {}
    for name, spec in FORMS[conn_type]["extras"].items():
        schema: dict[str, Any] = {"type": [spec["type"], "null"]}
        if "default" in spec:
            schema["default"] = spec["default"]
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
        from wtforms import BooleanField, IntegerField, StringField
    except ImportError:
        return {}
    try:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    except ImportError:  # the API server of Airflow 3.0/3.1 does not need the widget
        BS3TextFieldWidget = None
    kinds = {"number": IntegerField, "integer": IntegerField, "string": StringField, "boolean": BooleanField}
    out = {}
    for name, spec in FORMS[conn_type]["extras"].items():
        kind = kinds[spec["type"]]
        kwargs: dict[str, Any] = {"description": spec["description"], "default": spec.get("default")}
        if kind is not BooleanField and BS3TextFieldWidget is not None:
            kwargs["widget"] = BS3TextFieldWidget()
        out[name] = kind(spec["label"], **kwargs)
    return out
