"""What a report destination offers: open a writer for one export, commit it once, read a watermark."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from airflow_sms_provider.reports.record import DeliveryRecord


class ReportWriter(Protocol):
    """One export in progress. Rows written are not visible as the export's result until ``commit``."""

    def write(self, records: Sequence[DeliveryRecord]) -> None:
        """Add a batch (a few thousand records at most; the writer never needs them all in memory)."""

    def commit(self) -> int:
        """Make the export the one result (idempotent on retry: one row per message); rows written."""

    def abort(self) -> None:
        """Drop what this writer wrote; the destination stays as before ``open``."""


class ReportSink(Protocol):
    """A destination: a file in object storage or a SQL table."""

    def open(self, export_key: str, *, incremental: bool) -> ReportWriter:
        """Begin an export. ``export_key`` names it (dag/task/run): a retry with the same key replaces it.

        ``incremental``: records update rows already at the destination by message id instead of replacing
        the whole export.
        """

    def watermark(self, provider: str, campaign_ids: Sequence[str]) -> datetime | None:
        """The latest ``updated_at`` the destination holds for these campaigns (None when it holds none)."""

    def describe(self) -> str:
        """Where the rows go, for logs and XCom (never a secret)."""
