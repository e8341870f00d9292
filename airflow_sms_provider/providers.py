"""Which provider a connection belongs to, by its ``conn_type``, and its hook.

The provider-neutral pieces (:mod:`~airflow_sms_provider.notifications.sms`,
:mod:`~airflow_sms_provider.operators.campaign`, :mod:`~airflow_sms_provider.sensors.campaign`)
take a plain connection id and look the provider up here, so a DAG switches providers by
switching connections.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook

from airflow_sms_provider.exceptions import SmsNotFoundError, SmsValidationError


@dataclass(frozen=True)
class Provider:
    """A connection type and how to make its hook."""

    conn_type: str
    hook_path: str  # imported lazily: DAG files import the neutral modules on every parse
    conn_arg: str  # the hook's connection-id keyword

    def hook_class(self) -> type[Any]:
        module, _, name = self.hook_path.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def hook(self, conn_id: str) -> Any:
        return self.hook_class()(**{self.conn_arg: conn_id})


PROVIDERS: Mapping[str, Provider] = {
    p.conn_type: p
    for p in (
        Provider("mobizon", "airflow_sms_provider.hooks.mobizon.MobizonHook", "mobizon_conn_id"),
        Provider("bsg", "airflow_sms_provider.hooks.bsg.BsgHook", "bsg_conn_id"),
        Provider("ogangi", "airflow_sms_provider.hooks.ogangi.OgangiHook", "ogangi_conn_id"),
    )
}


def provider_named(conn_type: str | None, conn_id: str = "") -> Provider:
    """The :class:`Provider` of ``conn_type``; a validation error naming the supported types otherwise."""
    found = PROVIDERS.get(str(conn_type or "").strip().lower())
    if found is None:
        where = f"connection {conn_id!r} has type {conn_type!r}" if conn_id else f"connection type {conn_type!r}"
        raise SmsValidationError(
            f"{where}: not an SMS provider of this package (use one of {', '.join(PROVIDERS)})",
            field="conn_id",
            value=conn_type,
        )
    return found


def provider_for(conn_id: str) -> Provider:
    """Read connection ``conn_id`` and return its provider (by ``conn_type``)."""
    if not isinstance(conn_id, str) or not conn_id.strip():
        raise SmsValidationError(f"conn_id={conn_id!r}: name an Airflow connection", field="conn_id", value=conn_id)
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        # A missing connection is a configuration error: fail without retries.
        raise SmsValidationError(f"connection {conn_id!r} is not defined", field="conn_id", value=conn_id) from None
    return provider_named(conn.conn_type, conn_id)


def hook_for(conn_id: str) -> Any:
    """The hook for connection ``conn_id``: a MobizonHook, BsgHook or OgangiHook, by the connection's type."""
    return provider_for(conn_id).hook(conn_id)


def read_campaign(conn_type: str, hook: Any, campaign_id: int) -> dict[str, Any] | None:
    """The provider's read call for one campaign: Mobizon campaign/get, BSG GET /api/campaigns/{id},
    Ogangi getBroadcast (``None``: the broadcast no longer exists, i.e. it was deleted)."""
    if conn_type == "ogangi":
        try:
            return hook.get_broadcast(campaign_id)
        except SmsNotFoundError:
            return None
    return hook.get_campaign(campaign_id)


def per_provider(value: Any, conn_type: str) -> Any:
    """``value``, or ``value[conn_type]`` when it is a mapping keyed by connection type.

    Sender IDs differ between providers (Ogangi sends from a short code), so a DAG that
    switches providers can give ``{"mobizon": "MyShop", "bsg": "MyShop", "ogangi": "24365"}``.
    """
    if isinstance(value, Mapping):
        unknown = set(value) - set(PROVIDERS)
        if unknown:
            raise SmsValidationError(
                f"keys {sorted(unknown)} are not connection types ({', '.join(PROVIDERS)})",
                field="sender",
                value=sorted(unknown),
            )
        return value.get(conn_type)
    return value


__all__ = ["PROVIDERS", "Provider", "hook_for", "per_provider", "provider_for", "provider_named", "read_campaign"]
