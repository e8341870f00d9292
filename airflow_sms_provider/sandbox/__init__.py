"""A local, faithful stand-in for the SMS providers' APIs: a real HTTP server.

Develop and test DAGs without sending real SMS::

    from airflow_sms_provider.sandbox import SandboxServer, SANDBOX_MOBIZON_API_KEY

    with SandboxServer() as sandbox:   # 127.0.0.1, a free port
        ...  # point a Mobizon connection at sandbox.url with SANDBOX_MOBIZON_API_KEY

or run ``airflow-sms-sandbox`` (see ``--help``). The admin API under ``/_sandbox/``
resets state, moves the simulated clock, injects faults and shows what was received
(:mod:`airflow_sms_provider.sandbox.admin`).
"""

from airflow_sms_provider.sandbox.app import create_app
from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY
from airflow_sms_provider.sandbox.mobizon import SANDBOX_MOBIZON_API_KEY
from airflow_sms_provider.sandbox.ogangi import (
    SANDBOX_OGANGI_INSTANCE_ID,
    SANDBOX_OGANGI_PRIVATE_KEY,
    SANDBOX_OGANGI_PUBLIC_KEY,
    SANDBOX_OGANGI_USER,
)
from airflow_sms_provider.sandbox.server import SandboxServer
from airflow_sms_provider.sandbox.state import SandboxState

__all__ = [
    "SANDBOX_BSG_API_KEY",
    "SANDBOX_MOBIZON_API_KEY",
    "SANDBOX_OGANGI_INSTANCE_ID",
    "SANDBOX_OGANGI_PRIVATE_KEY",
    "SANDBOX_OGANGI_PUBLIC_KEY",
    "SANDBOX_OGANGI_USER",
    "SandboxServer",
    "SandboxState",
    "create_app",
]
