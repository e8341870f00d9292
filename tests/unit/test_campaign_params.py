"""The campaign work's parameters (campaigns/) mirror the operators' arguments.

An operator's ``execute`` copies its attributes into a parameters dataclass
(``campaigns.run.params_of``) and the neutral operator builds the same dataclass from its own
arguments: a default that differed between the two would make the neutral operator behave
unlike the provider operator it documents.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from airflow_sms_provider.campaigns.bsg import BsgBulkParams, BsgIndividualParams
from airflow_sms_provider.campaigns.mobizon import MobizonCampaignParams, MobizonCreateParams, MobizonSmsParams
from airflow_sms_provider.campaigns.ogangi import OgangiBroadcastParams, OgangiSendByFileParams
from airflow_sms_provider.campaigns.run import params_of
from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator, BsgIndividualCampaignOperator
from airflow_sms_provider.operators.mobizon import (
    MobizonCampaignOperator,
    MobizonCreateCampaignOperator,
    MobizonSendSmsOperator,
)
from airflow_sms_provider.operators.ogangi import OgangiCreateBroadcastOperator, OgangiSendSmsByFileOperator

PAIRS = [
    (MobizonCreateCampaignOperator, MobizonCreateParams),
    (MobizonCampaignOperator, MobizonCampaignParams),
    (MobizonSendSmsOperator, MobizonSmsParams),
    (BsgBulkCampaignOperator, BsgBulkParams),
    (BsgIndividualCampaignOperator, BsgIndividualParams),
    (OgangiSendSmsByFileOperator, OgangiSendByFileParams),
    (OgangiCreateBroadcastOperator, OgangiBroadcastParams),
]
REQUIRED = inspect.Parameter.empty


def operator_arguments(cls: type) -> dict[str, Any]:
    """Every keyword ``cls(...)`` takes and its default, the nearest class's winning (``REQUIRED``: none)."""
    found: dict[str, Any] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass.__module__.startswith("airflow."):
            continue
        for name, parameter in inspect.signature(vars(klass)["__init__"]).parameters.items():
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                found.setdefault(name, parameter.default)
    return found


def field_default(field: dataclasses.Field[Any]) -> Any:
    return REQUIRED if field.default is dataclasses.MISSING else field.default


@pytest.mark.parametrize(("operator", "params"), PAIRS, ids=[p.__name__ for _, p in PAIRS])
def test_every_parameter_is_an_operator_argument_with_the_same_default(operator: type, params: type) -> None:
    arguments = operator_arguments(operator)
    fields = {f.name: field_default(f) for f in dataclasses.fields(params)}
    assert set(fields) <= set(arguments), sorted(set(fields) - set(arguments))
    differ = {name: (arguments[name], default) for name, default in fields.items() if arguments[name] != default}
    assert not differ, f"operator default vs parameters default: {differ}"


def test_an_operator_hands_its_rendered_attributes_over() -> None:
    op = MobizonCampaignOperator(task_id="t", text="Hi", recipients=["77011112201"], validity=90, max_reported=3)
    op.text = "Hi, rendered"  # what template rendering does: attributes change after __init__
    params = params_of(MobizonCampaignParams, op)
    assert (params.text, params.validity, params.max_reported, params.recipients) == (
        "Hi, rendered", 90, 3, ["77011112201"],
    )  # fmt: skip
