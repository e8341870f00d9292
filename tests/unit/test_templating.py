"""The rendering rule for audience data (airflow_sms_provider/templating.py).

A top-level string of a data field is a template; nothing nested in a data field is ever
rendered, inline or resolved from XCom. Other template fields render as Airflow always does.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from collections import namedtuple
from typing import Any

import jinja2
import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG, BaseOperator

from airflow_sms_provider.notifications.sms import SmsNotifier
from airflow_sms_provider.templating import DATA_FIELDS, DataFieldsMixin, renders_whole

HOSTILE = "{{ 7 * 7 }}"
START = pendulum.datetime(2026, 1, 1, tz="UTC")
Row = namedtuple("Row", ["recipient", "name"])


@dataclasses.dataclass
class Customer:
    """A row object that even declares template_fields: Airflow would render into it."""

    recipient: str
    name: str
    template_fields = ("name",)


class Op(DataFieldsMixin, BaseOperator):
    template_fields = ("recipients", "groups", "text", "options")

    def __init__(self, *, recipients: Any = None, groups: Any = None, text: str = "", options: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recipients, self.groups, self.text, self.options = recipients, groups, text, options

    def execute(self, context: Any) -> None:  # pragma: no cover - never run here
        pass


class FakeTI:
    """What an XComArg's resolve() and ``ti.xcom_pull`` read."""

    task_id, dag_id, run_id, map_index = "send", "d", "manual__1", -1

    def __init__(self, value: Any) -> None:
        self.value = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", **_: Any) -> Any:
        return self.value

    def get_relevant_upstream_map_indexes(self, **_: Any) -> None:  # pragma: no cover - no mapped groups here
        return None


def render(op: Any, xcom: Any = None) -> Any:
    context = {"params": {"path": "/data/audience.csv", "who": "Aigerim"}, "ti": FakeTI(xcom), "ds": "2026-01-01"}
    op.render_template_fields(context, op.get_template_env())
    return op


def hostile_rows() -> list[Any]:
    return [
        {"recipient": "77011112201", "name": HOSTILE},
        {"recipient": "77011112202", "name": "{{ params.who }}", "extra": ["{{ ds }}", {"deep": "{{ ds }}"}]},
        ("77011112203", {"name": "{% for x in range(3) %}x{% endfor %}"}),
        Row("77011112204", "{{ var.value.x }}"),
        Customer("77011112205", "{{ conn.mobizon_default.password }}"),
        "{{ 77011112206 }}",
    ]


# ------------------------------------------------------------------ the rule


@pytest.mark.parametrize(
    "value",
    [hostile_rows(), ("{{ 1 }}", {"name": HOSTILE}), {"{{ 1 }}", "{{ 2 }}"},
     {"rows": ["{{ 1 }}"], "path": "{{ params.path }}"}, Row("{{ 1 }}", "{{ 2 }}"),
     Customer("77011112205", HOSTILE)],
    ids=["list-of-rows", "tuple", "set", "dict", "namedtuple", "dataclass-with-template-fields"],
)
def test_nothing_nested_in_a_data_field_is_rendered(value: Any) -> None:
    original = repr(value)
    op = render(Op(task_id="send", recipients=value, groups=value))

    assert op.recipients is value and op.groups is value  # the very object, not a rendered copy
    assert repr(op.recipients) == original


def test_a_generator_is_left_for_the_operator_to_stream() -> None:
    rows = (f"{{{{ {i} }}}}" for i in range(3))
    op = render(Op(task_id="send", recipients=rows))
    assert op.recipients is rows
    assert list(rows) == ["{{ 0 }}", "{{ 1 }}", "{{ 2 }}"]


def test_a_top_level_string_is_a_template() -> None:
    op = render(Op(task_id="send", recipients="{{ params.path }}", groups="{{ 40 + 2 }}"))
    assert (op.recipients, op.groups) == ("/data/audience.csv", "42")


def test_other_fields_keep_airflows_rendering() -> None:
    op = render(Op(task_id="send", recipients=["{{ 1 }}"], text="Hi {{ params.who }}",
                   options={"bsg": {"validity": "{{ 6 * 4 }}"}}))
    assert op.text == "Hi Aigerim"
    assert op.options == {"bsg": {"validity": "24"}}
    assert op.recipients == ["{{ 1 }}"]


def test_an_xcomarg_is_resolved_and_its_value_not_rendered() -> None:
    rows = hostile_rows()
    with DAG(dag_id="xcom_rule", schedule=None, start_date=START):
        export = Op(task_id="export")
        op = Op(task_id="send", recipients=export.output, groups=export.output["groups"])

    render(op, xcom=rows)

    assert op.recipients is rows and op.groups is rows
    assert op.recipients[0]["name"] == HOSTILE


@pytest.mark.parametrize("native", [True, False])
def test_an_xcom_template_renders_once(native: bool) -> None:
    rows = hostile_rows()[:2]
    with DAG(dag_id="xcom_template", schedule=None, start_date=START, render_template_as_native_obj=native):
        op = Op(task_id="send", recipients="{{ ti.xcom_pull('export') }}", text="{{ 6 * 7 }}")

    render(op, xcom=rows)

    if native:  # the list itself, what it holds untouched
        assert op.recipients == rows and op.text == 42
    else:  # Airflow's string rendering: the list's repr, templates inside it not run either
        assert op.recipients == str(rows) and op.text == "42"
    assert "{{ 7 * 7 }}" in str(op.recipients) and "Aigerim" not in str(op.recipients)


@pytest.mark.skipif("render_template_as_native_obj" not in inspect.signature(BaseOperator.__init__).parameters,
                    reason="an operator-level render_template_as_native_obj needs Airflow >= 3.1")
def test_render_template_as_native_obj_on_the_operator() -> None:
    op = Op(task_id="send", recipients="{{ [params.path] }}", render_template_as_native_obj=True)
    assert render(op).recipients == ["/data/audience.csv"]


def test_renders_whole() -> None:
    with DAG(dag_id="whole", schedule=None, start_date=START):
        export = Op(task_id="export")
    assert renders_whole("{{ x }}") and renders_whole(export.output) and renders_whole(export.output["k"])
    assert renders_whole(lambda context, jinja_env: [])  # Airflow's own rule for callables applies
    for data in ([], {}, (), set(), (x for x in ()), Row("1", "2"), Customer("1", "2"), 5, None, dict):
        assert not renders_whole(data)


def test_a_rendering_error_in_a_top_level_template_still_raises() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render(Op(task_id="send", recipients="{{ params.missing.deeper }}"))


# ------------------------------------------------------------------ the package's operators


def _audience_operators() -> list[Any]:
    from airflow_sms_provider.operators import bsg, campaign, mobizon, ogangi, reports
    from airflow_sms_provider.sensors.bsg import BsgCampaignSensor
    from airflow_sms_provider.sensors.campaign import SmsCampaignSensor

    rows = hostile_rows
    return [
        mobizon.MobizonCampaignOperator(task_id="m1", text="Hi {name}", campaign_type=3, recipients=rows()),
        mobizon.MobizonAddRecipientsOperator(task_id="m2", campaign_id="{{ 1 }}", recipients=rows(),
                                             contacts=["{{ 1 }}"], groups=["{{ 2 }}"]),
        mobizon.MobizonSendSmsOperator(task_id="m3", recipient="{{ '7701' }}1112201", text="x"),
        mobizon.MobizonMessageStatusOperator(task_id="m4", message_ids=["{{ 1 }}"]),
        bsg.BsgBulkCampaignOperator(task_id="b1", text="x", sender="MyShop", recipients=rows()),
        bsg.BsgIndividualCampaignOperator(task_id="b2", text="Hi {name}", sender="MyShop", recipients=rows()),
        bsg.BsgGroupsCampaignOperator(task_id="b3", groups=["{{ 1 }}"], text="x", sender="MyShop"),
        bsg.BsgStopCampaignOperator(task_id="b4", campaign_ids=["{{ 1 }}"]),
        bsg.BsgCampaignStatsOperator(task_id="b5", campaign_ids=["{{ 1 }}"]),
        ogangi.OgangiSendSmsByFileOperator(task_id="o1", text="Hi {0}", sender="24365", recipients=rows()),
        ogangi.OgangiCreateBroadcastOperator(task_id="o2", text="Hi {name}", recipients=rows()),
        campaign.SmsCampaignOperator(task_id="n1", conn_id="bsg_default", text="Hi {name}", recipients=rows()),
        reports.SmsDeliveryReportOperator(task_id="r1", conn_id="bsg_default", campaign_ids=["{{ 7 * 7 }}", 2],
                                          destination="/tmp/{{ ds }}.csv"),
        BsgCampaignSensor(task_id="s1", campaign_ids=["{{ 7 * 7 }}"]),
        SmsCampaignSensor(task_id="s2", conn_id="bsg_default", campaign_ids=["{{ 7 * 7 }}", "{{ conn.x.password }}"]),
    ]


@pytest.mark.parametrize("op", _audience_operators(), ids=lambda op: type(op).__name__)
def test_no_audience_operator_renders_nested_data(op: Any) -> None:
    data = {name: getattr(op, name) for name in op.template_fields if name in DATA_FIELDS}
    before = {name: repr(value) for name, value in data.items()}

    render(op)

    for name, value in data.items():
        assert getattr(op, name) is value or (isinstance(value, str) and "{{" not in getattr(op, name)), name
        if not isinstance(value, str):
            assert repr(getattr(op, name)) == before[name], name


# ------------------------------------------------------------------ the notifier


def test_the_notifier_renders_its_message_but_not_nested_numbers() -> None:
    numbers = ["+380501234567", "{{ '3805012345' ~ '68' }}"]
    notifier = SmsNotifier(conn_id="{{ params.conn }}", recipients=numbers, message="{{ ti.task_id }} failed")
    notifier.render_template_fields({"params": {"conn": "bsg_default"}, "ti": FakeTI(None)})

    assert (notifier.conn_id, notifier.message) == ("bsg_default", "send failed")
    assert notifier.recipients is numbers


def test_the_notifier_renders_a_top_level_recipients_string() -> None:
    notifier = SmsNotifier(conn_id="bsg_default", recipients="{{ params.on_call }}")
    notifier.render_template_fields({"params": {"on_call": "+380501234567"}, "ti": FakeTI(None)})
    assert notifier.recipients == "+380501234567"


# ------------------------------------------------------------------ every operator follows the rule


def _package_classes() -> list[type]:
    """The notifier, every operator and every sensor (a sensor is an operator: the rule holds there too)."""
    import airflow_sms_provider.operators
    import airflow_sms_provider.sensors

    classes: list[type] = [SmsNotifier]
    for package in (airflow_sms_provider.operators, airflow_sms_provider.sensors):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            classes += [c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == module.__name__]
    return classes


def test_every_class_with_a_data_field_applies_the_rule() -> None:
    checked = []
    for cls in _package_classes():
        data = set(getattr(cls, "template_fields", ())) & DATA_FIELDS
        if data:
            assert issubclass(cls, DataFieldsMixin), f"{cls.__name__} templates {sorted(data)} without the rule"
            assert data <= cls.data_fields
            checked.append(cls.__name__)
    assert {"MobizonCampaignOperator", "MobizonAddRecipientsOperator", "BsgBulkCampaignOperator",
            "BsgIndividualCampaignOperator", "BsgGroupsCampaignOperator", "OgangiSendSmsByFileOperator",
            "OgangiCreateBroadcastOperator", "SmsCampaignOperator", "SmsNotifier", "SmsDeliveryReportOperator",
            "BsgCampaignSensor", "SmsCampaignSensor"} <= set(checked)
