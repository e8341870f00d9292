"""Mount the receiver on Airflow's API server (Airflow 3.0+: ``AirflowPlugin.fastapi_apps``).

Opt-in: put ``from airflow_sms_provider.events.plugin import SmsEventsPlugin`` in a file of the
plugins folder. The receiver then answers under ``<api-server>/sms-events/``; it reads each
connection's ``webhook_secret`` (events/mobizon.py) or ``callback_token`` (events/bsg.py) extra and
records asset events directly in Airflow's database
(it runs inside the API server, the process the REST API's ``POST /api/v2/assets/events`` runs in).

Configuration (``airflow.cfg`` or ``AIRFLOW__SMS_EVENTS__*``): ``[sms_events] store_path``
(default ``$AIRFLOW_HOME/sms_events.sqlite3``) and ``quiet_seconds`` (default 60).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from starlette.types import Receive, Scope, Send

from airflow_sms_provider.events.receiver import Receiver
from airflow_sms_provider.events.store import EventStore

URL_PREFIX = "/sms-events"


def airflow_asset_sink(uri: str, extra: dict[str, Any]) -> None:
    """Record one asset event for ``uri`` in Airflow's database, creating the asset if no DAG declared it."""
    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        model = session.scalar(select(AssetModel).where(AssetModel.name == uri, AssetModel.uri == uri))
        if model is None:
            # Name = URI: what ``Asset("sms://mobizon/<conn_id>")`` in a DAG means, so a DAG added
            # later finds this row (and its events) rather than a second asset.
            model = AssetModel(name=uri, uri=uri)
            session.add(model)
            session.flush()
            session.add(AssetActive.for_asset(model))
            session.flush()
        if asset_manager.register_asset_change(asset=model, extra=extra, session=session) is None:
            raise RuntimeError(f"Airflow did not record the asset event for {uri}")


class _LazyReceiverApp:
    """Builds the receiver on its first request: every Airflow process imports plugins, only the API server serves."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    def _build(self) -> Any:
        from airflow.configuration import conf

        home = os.environ.get("AIRFLOW_HOME") or conf.get("core", "airflow_home", fallback=".")
        path = conf.get("sms_events", "store_path", fallback=None) or os.path.join(home, "sms_events.sqlite3")
        quiet = conf.getfloat("sms_events", "quiet_seconds", fallback=60.0)
        return Receiver(EventStore(path), airflow_asset_sink, quiet_seconds=quiet).app()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._build()
        await self._app(scope, receive, send)


class SmsEventsPlugin(AirflowPlugin):
    """The SMS delivery-event receiver under ``/sms-events`` of the API server."""

    name = "sms_events"
    fastapi_apps = [{"app": _LazyReceiverApp(), "url_prefix": URL_PREFIX, "name": "SMS delivery events"}]
