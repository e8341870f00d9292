"""The error-event shape of this package's triggers: kept at this import path for code that used it.

It lives in :mod:`airflow_sms_provider.campaigns.events`, below the Airflow faces, because the
shared watch loop (:mod:`airflow_sms_provider.campaigns.watch`) builds these events too and
``campaigns/`` must not import ``triggers/`` (ARCHITECTURE.md: arrows point down).
"""

from __future__ import annotations

from airflow_sms_provider.campaigns.events import error_event, not_found, raise_for_error

__all__ = ["error_event", "not_found", "raise_for_error"]
