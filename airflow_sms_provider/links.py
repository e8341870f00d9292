"""Extra links: a campaign operator's or sensor's button to the campaign in the provider's web dashboard.

The URL is built from the connection's Host alone (no API call, no credentials) while the
task runs, and pushed to XCom under the link's ``xcom_key``. The UI never calls
:meth:`CampaignLink.get_link`: Airflow 3's API server has no operator code, so it shows the
XCom value stored under that key. ``get_link`` reads the same XCom back, which is what the
task runner writes again under the key when the task ends (Airflow 3.0 to 3.3 alike).

===========  ===============================================  =====================================
connection   dashboard                                        page
===========  ===============================================  =====================================
mobizon      the API domain without ``api.``                  ``https://mobizon.kz/campaign/view/{id}``
             (``api.mobizon.kz`` → ``mobizon.kz``)
bsg          ``https://app.bsg.world`` (the personal account  ``https://app.bsg.world/campaigns/{id}``
             the BSG OpenAPI spec links to)
ogangi       the connection's base URL (the customer's MMC    ``{base}/broadcasts/{id}``
             server, taken to serve its Campaign Manager)
sandbox      a loopback Host (``http://127.0.0.1:8765``)       ``{origin}/_sandbox/{provider}/campaigns/{id}``
===========  ===============================================  =====================================

No provider document names its campaign page: the paths are this package's decision, one
constant each in the provider's hook (``dashboard_page`` of
:class:`~airflow_sms_provider.hooks.base.SmsHook`). A Mobizon Host that is not an ``api.`` domain (a proxy) has no known
dashboard, so its tasks show no link.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import BaseHook, BaseOperatorLink

from airflow_sms_provider.connections import base_url
from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.providers import provider_named

log = logging.getLogger(__name__)

# The sandbox's read-only view of one campaign (airflow_sms_provider.sandbox.admin).
SANDBOX_CAMPAIGN_PATH = "/_sandbox/{provider}/campaigns/{id}"


def _is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _hook_class(conn_type: str) -> Any:
    try:
        return provider_named(conn_type).hook_class()
    except SmsValidationError:
        return None  # not an SMS connection: no link


def dashboard_url(conn_type: str, api_base: str, campaign_id: int) -> str | None:
    """The campaign's page for an API base URL (as :func:`~airflow_sms_provider.connections.base_url`
    writes it); ``None`` when that connection has no known dashboard.

    A loopback Host is the sandbox; any other is the hook's ``dashboard_page``. Only the
    scheme, host name, port and path of ``api_base`` are used: user info written into a
    Host (``https://user:secret@…``) never reaches the link.
    """
    parts = urlsplit(api_base)
    hostname = (parts.hostname or "").lower()
    campaign = int(campaign_id)
    hook_class = _hook_class(conn_type)
    if not hostname or campaign <= 0 or hook_class is None:
        return None
    if _is_loopback(hostname):
        host = f"[{hostname}]" if ":" in hostname else hostname
        origin = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
        return origin + SANDBOX_CAMPAIGN_PATH.format(provider=hook_class.conn_type, id=campaign)
    page = hook_class.dashboard_page(parts, campaign)
    return str(page) if page else None


def connection_dashboard_url(conn_id: str, campaign_id: int) -> str | None:
    """:func:`dashboard_url` for a connection, by its type and Host (read from Airflow, nothing else)."""
    conn = BaseHook.get_connection(conn_id)
    conn_type = str(conn.conn_type or "").lower()
    hook_class = _hook_class(conn_type)
    default = hook_class.default_base_url if hook_class is not None else None  # what the hook reads for an empty Host
    return dashboard_url(conn_type, base_url(conn.host, conn.port, default=default), campaign_id)


def _first_id(campaign_ids: Any) -> int:
    # Imported here: the sensors module imports this one.
    from airflow_sms_provider.sensors.campaign import campaign_ids as parse_ids

    return parse_ids(campaign_ids)[0]


def persist_campaign_link(context: Any, conn_id: str, campaign_ids: Any, log: Any = None) -> str | None:
    """Push the campaign's dashboard URL under the running task's campaign link key(s).

    ``campaign_ids``: an id, several (the first is linked), or an upstream summary. The key
    is that of every :class:`CampaignLink` of ``context["ti"].task``: a provider operator run
    inside :class:`~airflow_sms_provider.operators.campaign.SmsCampaignOperator` fills the
    neutral operator's link. Never raises: a link is not worth failing (and retrying) a task
    that may have sent SMS; a problem is logged without the connection's details.
    """
    try:
        ti = context.get("ti") if isinstance(context, Mapping) else None
        links = getattr(getattr(ti, "task", None), "operator_extra_links", None) or ()
        keys = sorted({link.xcom_key for link in links if isinstance(link, CampaignLink)})
        if ti is None or not keys:
            return None
        url = connection_dashboard_url(conn_id, _first_id(campaign_ids))
        if url is not None:
            for key in keys:
                ti.xcom_push(key=key, value=url)
        return url
    except Exception as err:
        if log is not None:
            log.warning("No campaign link for this task (%s)", type(err).__name__)
        return None


def _xcom_exists(comms: Any, ti_key: Any, key: str) -> bool:
    """Ask the supervisor how many values ``key`` has before reading it.

    A read of a missing XCom makes the supervisor (in the scheduler's or worker's
    process) log ``XCom not found`` as an error, which a task that failed before its
    campaign existed would otherwise add on every run. Counting logs nothing. True
    when the count cannot be asked (Airflow 3.0's supervisor API): then the read decides.
    """
    try:
        from airflow.sdk.execution_time.comms import GetXComCount, XComCountResponse

        answer = comms.send(GetXComCount(key=key, dag_id=ti_key.dag_id, run_id=ti_key.run_id,
                                         task_id=ti_key.task_id))
    except Exception:
        return True
    return not (isinstance(answer, XComCountResponse) and answer.len == 0)


def _read_xcom(ti_key: Any, key: str) -> Any:
    """The XCom ``key`` of ``ti_key``: through the task's supervisor in a running task, else from the DB."""
    from airflow.sdk.execution_time import task_runner

    if hasattr(task_runner, "SUPERVISOR_COMMS"):  # inside a task (the runner's finalize step)
        from airflow.providers.common.compat.sdk import XCom

        if not _xcom_exists(task_runner.SUPERVISOR_COMMS, ti_key, key):
            return None
        return XCom.get_value(ti_key=ti_key, key=key)
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    # A plain select: XComModel.get_many returns a Query on Airflow 3.0 and a Select on 3.1+.
    query = select(XComModel.value).where(
        XComModel.key == key, XComModel.dag_id == ti_key.dag_id, XComModel.task_id == ti_key.task_id,
        XComModel.run_id == ti_key.run_id, XComModel.map_index == ti_key.map_index,
    )
    with create_session() as session:
        row = session.execute(query).first()
    if row is None:
        return None
    try:
        return json.loads(row.value)
    except (TypeError, ValueError):
        return row.value


class CampaignLink(BaseOperatorLink):
    """A link to the campaign in the dashboard; the URL is what the task pushed under ``xcom_key``."""

    name = "SMS campaign"
    xcom_key = "sms_campaign_link"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """The stored URL, or ``""`` (Airflow shows no link) when the task stored none."""
        try:
            value = _read_xcom(ti_key, self.xcom_key)
        except Exception as err:  # never fail the task runner's last step (Airflow 3.0 does not catch it)
            log.warning("Could not read the %s link from XCom (%s)", self.name, type(err).__name__)
            return ""
        # Only a web URL is a link: anything else under the key is not shown.
        return value if isinstance(value, str) and value.startswith(("https://", "http://")) else ""


class MobizonCampaignLink(CampaignLink):
    """The Mobizon campaign on the dashboard of the connection's regional domain."""

    name = "Mobizon campaign"
    xcom_key = "mobizon_campaign_link"


class BsgCampaignLink(CampaignLink):
    """The BSG campaign in the personal account (the first one when an audience was split)."""

    name = "BSG campaign"
    xcom_key = "bsg_campaign_link"


class OgangiBroadcastLink(CampaignLink):
    """The Ogangi broadcast on the customer's MMC server."""

    name = "Ogangi broadcast"
    xcom_key = "ogangi_broadcast_link"


class SmsCampaignLink(CampaignLink):
    """The neutral operator's and sensor's link: the page of the connection's provider (by its type)."""

    name = "SMS campaign"
    xcom_key = "sms_campaign_link"


LINK_CLASSES: tuple[type[CampaignLink], ...] = (MobizonCampaignLink, BsgCampaignLink, OgangiBroadcastLink,
                                                SmsCampaignLink)

__all__ = [
    "LINK_CLASSES", "BsgCampaignLink", "CampaignLink", "MobizonCampaignLink", "OgangiBroadcastLink",
    "SmsCampaignLink", "connection_dashboard_url", "dashboard_url", "persist_campaign_link",
]
