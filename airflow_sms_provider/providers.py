"""Which hook a connection gets, by its ``conn_type``: the registry of SMS providers.

The provider-neutral pieces (the notifier, the neutral operator, sensor and trigger, the
links) take a plain connection id, look its type up here and call the
:class:`~airflow_sms_provider.hooks.base.SmsHook` interface on the hook they get: a DAG
switches providers by switching connections, and nothing here knows a provider by name.

The types are read from ``connection-types`` of provider info, the same entries Airflow's
ProvidersManager reads: this package's own :func:`~airflow_sms_provider.get_provider_info.get_provider_info`,
entries given to :func:`register_provider_info`, and, for a type neither knows, Airflow's
hook registry (another installed provider package), as long as its hook is an ``SmsHook``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook

from airflow_sms_provider.connections import register_connection_secrets
from airflow_sms_provider.exceptions import SmsValidationError

# conn_type -> hook class path, from register_provider_info (a provider outside this package).
_REGISTERED: dict[str, str] = {}


@lru_cache(maxsize=1)
def _own() -> dict[str, str]:
    from airflow_sms_provider.get_provider_info import get_provider_info

    return _hook_paths(get_provider_info())


def _hook_paths(info: Mapping[str, Any]) -> dict[str, str]:
    return {str(item["connection-type"]): str(item["hook-class-name"]) for item in info.get("connection-types") or ()}


def register_provider_info(info: Mapping[str, Any]) -> list[str]:
    """Add the ``connection-types`` of a provider info dict (the shape ``get_provider_info()`` returns).

    Returns the types added. Their hooks must implement :class:`~airflow_sms_provider.hooks.base.SmsHook`.
    """
    paths = _hook_paths(info)
    _REGISTERED.update(paths)
    return list(paths)


def unregister(conn_type: str) -> None:
    """Forget a type added by :func:`register_provider_info` (tests)."""
    _REGISTERED.pop(conn_type, None)


def conn_types() -> list[str]:
    """Every connection type known to be an SMS provider (this package's, then registered ones)."""
    return list(dict.fromkeys([*_own(), *_REGISTERED]))


def _import(path: str) -> type[Any]:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _airflow_hook_path(conn_type: str) -> str | None:
    """The hook class Airflow's own registry names for ``conn_type`` when it is an SmsHook, else None."""
    try:
        manager: Any
        try:  # Airflow 3.2+: the task SDK's registry (ProvidersManager.hooks is deprecated there)
            from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

            manager = ProvidersManagerTaskRuntime()
        except ImportError:
            from airflow.providers_manager import ProvidersManager

            manager = ProvidersManager()
        info = manager.hooks.get(conn_type)
        path = getattr(info, "hook_class_name", None)
        if not path:
            return None
        from airflow_sms_provider.hooks.base import SmsHook

        return path if issubclass(_import(path), SmsHook) else None
    except Exception:  # no registry here, or a broken provider: not an SMS provider
        return None


@dataclass(frozen=True)
class Provider:
    """A connection type and how to make its hook."""

    conn_type: str
    hook_path: str  # imported lazily: DAG files import the neutral modules on every parse

    def hook_class(self) -> type[Any]:
        return _import(self.hook_path)

    @property
    def conn_arg(self) -> str:
        """The hook's connection-id keyword."""
        return str(self.hook_class().conn_name_attr)

    def hook(self, conn_id: str) -> Any:
        return self.hook_class().for_connection(conn_id)


class _Providers(Mapping[str, Provider]):
    """``PROVIDERS[conn_type]``: every known type (see :func:`conn_types`)."""

    def __getitem__(self, conn_type: str) -> Provider:
        path = _own().get(conn_type) or _REGISTERED.get(conn_type)
        if path is None:
            raise KeyError(conn_type)
        return Provider(conn_type, path)

    def __iter__(self) -> Iterator[str]:
        return iter(conn_types())

    def __len__(self) -> int:
        return len(conn_types())


PROVIDERS: Mapping[str, Provider] = _Providers()


def provider_named(conn_type: str | None, conn_id: str = "") -> Provider:
    """The :class:`Provider` of ``conn_type``; a validation error naming the supported types otherwise."""
    key = str(conn_type or "").strip().lower()
    found = PROVIDERS.get(key)
    if found is None and key:
        path = _airflow_hook_path(key)
        found = Provider(key, path) if path else None
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
    # Every form of its secrets is masked from here on: a caller may format text (an alert's failure
    # text) before any hook reads the connection's settings.
    register_connection_secrets(conn)
    return provider_named(conn.conn_type, conn_id)


def hook_for(conn_id: str) -> Any:
    """The :class:`~airflow_sms_provider.hooks.base.SmsHook` for connection ``conn_id``, by its type."""
    return provider_for(conn_id).hook(conn_id)


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


__all__ = [
    "PROVIDERS", "Provider", "conn_types", "hook_for", "per_provider", "provider_for", "provider_named",
    "register_provider_info", "unregister",
]
