"""The connection forms: required fields are marked, Port is offered (the list's Test button needs it)."""

from __future__ import annotations

import pytest

from airflow_sms_provider.get_provider_info import get_provider_info
from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.hooks.ogangi import OgangiHook
from airflow_sms_provider.ui import REQUIRED

# What each hook refuses when empty: standard fields by name, extras by key.
REQUIRED_FIELDS = {
    "mobizon": ({"host", "password"}, set()),
    "bsg": ({"password"}, set()),
    "ogangi": ({"host", "login", "password"}, {"instance_id", "public_key"}),
}
HOOKS = {"mobizon": MobizonHook, "bsg": BsgHook, "ogangi": OgangiHook}


def provider_form(conn_type: str) -> dict:
    (form,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == conn_type]
    return form


@pytest.mark.parametrize("conn_type", list(REQUIRED_FIELDS))
def test_required_fields_are_marked_in_the_provider_info(conn_type: str) -> None:
    standard, extras = REQUIRED_FIELDS[conn_type]
    form = provider_form(conn_type)
    labels = form["ui-field-behaviour"]["relabeling"]
    assert {name for name, label in labels.items() if label.endswith(REQUIRED)} == standard
    # Airflow >= 3.2 marks an extra required when its schema type does not allow null.
    required = {name for name, field in form["conn-fields"].items() if "null" not in field["schema"]["type"]}
    assert required == extras


@pytest.mark.parametrize("conn_type", list(REQUIRED_FIELDS))
def test_required_fields_are_marked_for_older_uis(conn_type: str) -> None:
    standard, extras = REQUIRED_FIELDS[conn_type]
    labels = HOOKS[conn_type].get_ui_field_behaviour()["relabeling"]
    assert {name for name, label in labels.items() if label.endswith(REQUIRED)} == standard
    widgets = HOOKS[conn_type].get_connection_form_widgets()
    if widgets:  # WTForms installed (the legacy-ui extra)
        assert {name for name, w in widgets.items() if str(w.args[0]).endswith(REQUIRED)} == extras


@pytest.mark.parametrize("conn_type", list(REQUIRED_FIELDS))
def test_port_is_in_every_form(conn_type: str) -> None:
    assert "port" not in provider_form(conn_type)["ui-field-behaviour"]["hidden-fields"]
    assert "port" not in HOOKS[conn_type].get_ui_field_behaviour()["hidden_fields"]


@pytest.mark.parametrize("conn_type", list(REQUIRED_FIELDS))
def test_secret_extras_are_password_fields_and_named_so_airflow_masks_them(conn_type: str) -> None:
    try:
        from airflow.sdk._shared.secrets_masker import should_hide_value_for_key
    except ImportError:  # Airflow 3.0
        from airflow.sdk.execution_time.secrets_masker import should_hide_value_for_key

    from airflow_sms_provider.connections import is_secret_extra

    fields = provider_form(conn_type)["conn-fields"]
    secret = {name for name in fields if is_secret_extra(name)}
    assert {name for name, field in fields.items() if field["schema"].get("format") == "password"} == secret
    # Airflow's UI and REST API mask an extra only by its name: every secret one must carry a name it knows.
    assert [name for name in secret if not should_hide_value_for_key(name)] == []


def test_the_extras_events_and_reports_read_are_on_the_forms() -> None:
    assert {"webhook_secret", "report_salt_secret"} <= set(provider_form("mobizon")["conn-fields"])
    assert {"callback_token", "events_url", "report_salt_secret"} <= set(provider_form("bsg")["conn-fields"])
