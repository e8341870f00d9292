"""What Airflow's ProvidersManager reads about this package (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_sms_provider import __version__
from airflow_sms_provider.ui import conn_fields, provider_ui_behaviour

PACKAGE = "airflow_sms_provider"

# (integration name, connection type, hook class, API documentation); module lists follow from them.
_PROVIDERS = [
    ("Mobizon", "mobizon", "MobizonHook", "https://mobizon.kz/en/help/api-docs"),
    ("BSG One-API", "bsg", "BsgHook", "https://one-api.bsg.world"),
    ("Ogangi (Messangi MMC)", "ogangi", "OgangiHook", "https://www.ogangi.com"),
]


# Campaign links of the operators and sensors (airflow_sms_provider.links).
_LINKS = ("MobizonCampaignLink", "BsgCampaignLink", "OgangiBroadcastLink", "SmsCampaignLink")

# The provider-neutral layer (any of the connection types above): its own integration entry.
NEUTRAL = "SMS (any provider)"


def _modules(role: str) -> list[dict[str, Any]]:
    modules = [
        {"integration-name": name, "python-modules": [f"{PACKAGE}.{role}.{conn_type}"]}
        for name, conn_type, _, _ in _PROVIDERS
    ]
    if role != "hooks":  # the neutral layer uses the providers' hooks
        neutral = [f"{PACKAGE}.{role}.campaign"]
        if role == "operators":  # delivery reports, governed sends (SmsApprovalOperator, Airflow 3.1+)
            neutral += [f"{PACKAGE}.operators.reports", f"{PACKAGE}.operators.approval"]
        modules.append({"integration-name": NEUTRAL, "python-modules": neutral})
    return modules


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-sms-provider",
        "name": "SMS marketing (Mobizon, BSG One-API, Ogangi)",
        "description": "Create, fill, send and track SMS campaigns from Airflow DAGs.",
        "versions": [__version__],
        "integrations": [
            *({"integration-name": name, "external-doc-url": docs, "tags": ["service"]}
              for name, _, _, docs in _PROVIDERS),
            {"integration-name": NEUTRAL, "tags": ["service"]},
        ],
        "hooks": _modules("hooks"),
        "operators": _modules("operators"),
        "sensors": _modules("sensors"),
        "triggers": _modules("triggers"),
        "notifications": [f"{PACKAGE}.notifications.sms.SmsNotifier"],
        # Named, not imported: Airflow reads this without importing the operators.
        "extra-links": [f"{PACKAGE}.links.{name}" for name in _LINKS],
        "connection-types": [
            {
                "hook-class-name": f"{PACKAGE}.hooks.{conn_type}.{hook}",
                "hook-name": name,
                "connection-type": conn_type,
                "conn-fields": conn_fields(conn_type),
                "ui-field-behaviour": provider_ui_behaviour(conn_type),
            }
            for name, conn_type, hook, _ in _PROVIDERS
        ],
    }
