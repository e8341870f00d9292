"""What a send would cost before it is sent: audience size, SMS parts, price and a few filled texts.

:meth:`~airflow_sms_provider.hooks.base.SmsHook.estimate` reads the audience once, streaming,
with the package's own rules (:func:`~airflow_sms_provider.recipients.iter_recipients`: invalid
rows reported, a number repeated sent once, first row wins), fills each row's ``{placeholders}``
and counts the parts of that row's text. A :class:`Pricer` turns the rows into money: BSG asks its
price endpoint, Mobizon and Ogangi multiply by the rate on the connection (``price_per_part`` and
``currency`` extras); without a rate the cost is unknown and says so. Nothing here sends an SMS.

Memory is flat in the audience except for the audience rule's set of numbers seen (as in every
send): samples and examples are capped, parts are a histogram.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.recipients import (
    DuplicateReport,
    RejectReport,
    fill_placeholders,
    fill_problem,
    iter_recipients,
    placeholders,
    sms_parts,
)
from airflow_sms_provider.validation import check_text

# Connection extras holding a rate for providers whose API has no price endpoint.
RATE_FIELD = "price_per_part"
CURRENCY_FIELD = "currency"
_CURRENCY = re.compile(r"[A-Z]{3}")
_SHOWN_SAMPLE = 640  # characters of one sample text in the approval body (a 4-part GSM-7 text)


def masked(number: str) -> str:
    """A normalised number as an approver sees it: country and operator code and the last four digits."""
    digits = str(number)
    if len(digits) <= 8:
        return "+" + "*" * len(digits)
    return f"+{digits[:4]}***{digits[-4:]}"


class Pricer(Protocol):
    """Prices the audience row by row (``add``), then answers ``(cost, currency, basis)``."""

    def add(self, number: str, text: str, parts: int) -> None: ...

    def result(self) -> tuple[float | None, str | None, str]: ...


@dataclass
class RatePricer:
    """Total parts times a configured rate (Mobizon, Ogangi, any provider without a price API)."""

    rate: Decimal
    currency: str
    conn_id: str
    parts: int = 0

    def add(self, number: str, text: str, parts: int) -> None:
        self.parts += parts

    def result(self) -> tuple[float | None, str | None, str]:
        # One multiplication at the end: no float error summed over a million rows.
        cost = float((self.rate * self.parts).quantize(Decimal("0.000001")))
        return cost, self.currency, f"{RATE_FIELD} {self.rate} {self.currency} of connection {self.conn_id!r}"


@dataclass
class UnknownPricer:
    """No rate configured: the cost is unknown, and the basis says how to make it known."""

    conn_id: str

    def add(self, number: str, text: str, parts: int) -> None:
        pass

    def result(self) -> tuple[float | None, str | None, str]:
        return None, None, (f"unknown: connection {self.conn_id!r} has no {RATE_FIELD!r} extra "
                            f"(set it and {CURRENCY_FIELD!r} to see a cost)")


def connection_rate(extra: Mapping[str, Any] | None, conn_id: str) -> Pricer:
    """The pricer a connection's extras ask for: :class:`RatePricer` or :class:`UnknownPricer`.

    ``price_per_part`` is a decimal number >= 0 (a JSON number or a string such as ``"0.021"``);
    ``currency`` an ISO 4217 code (``KZT``, ``USD``), required with a rate.
    """
    extra = extra or {}
    raw = extra.get(RATE_FIELD)
    if raw in (None, ""):
        return UnknownPricer(conn_id)
    try:
        if isinstance(raw, bool):
            raise InvalidOperation
        rate = Decimal(str(raw).strip())
        if not rate.is_finite() or rate < 0:
            raise InvalidOperation
    except InvalidOperation:
        raise SmsValidationError(
            f"connection {conn_id!r}: {RATE_FIELD}={raw!r} is not a price (a decimal number >= 0, e.g. 0.021)",
            field=RATE_FIELD, value=raw,
        ) from None  # fmt: skip
    currency = extra.get(CURRENCY_FIELD)
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency.strip().upper()):
        raise SmsValidationError(
            f"connection {conn_id!r}: {CURRENCY_FIELD}={currency!r} must be a 3-letter currency code "
            f"(e.g. KZT, USD) when {RATE_FIELD} is set",
            field=CURRENCY_FIELD, value=currency,
        )  # fmt: skip
    return RatePricer(rate, currency.strip().upper(), conn_id)


@dataclass
class Estimate:
    """The result of an estimate; :meth:`as_dict` is what goes to XCom."""

    provider: str
    recipients: int  # valid, distinct numbers: what a send would address
    rejected: int
    rejected_examples: list[dict[str, Any]]
    duplicates: int
    parts: dict[int, int]  # parts per message -> how many recipients get that many
    encodings: dict[str, int]  # GSM-7 / UCS-2 -> recipients
    total_parts: int
    cost: float | None
    currency: str | None
    cost_basis: str
    samples: list[dict[str, str]] = field(default_factory=list)  # {"to": masked, "text": filled}

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider, "recipients": self.recipients, "rejected": self.rejected,
            "rejected_examples": list(self.rejected_examples), "duplicates": self.duplicates,
            "parts": {str(k): v for k, v in sorted(self.parts.items())}, "encodings": dict(self.encodings),
            "total_parts": self.total_parts, "cost": self.cost, "currency": self.currency,
            "cost_basis": self.cost_basis, "samples": [dict(s) for s in self.samples],
        }  # fmt: skip

    def parts_line(self) -> str:
        """``2 parts each`` or ``1 part: 900, 2 parts: 100`` (parts per message)."""
        if not self.parts:
            return "none"
        if len(self.parts) == 1:
            (n,) = self.parts
            return f"{n} part{'s' if n != 1 else ''} each"
        return ", ".join(f"{n} part{'s' if n != 1 else ''}: {count}" for n, count in sorted(self.parts.items()))

    def cost_line(self) -> str:
        if self.cost is None:
            return self.cost_basis
        return f"{self.cost:.6f}".rstrip("0").rstrip(".") + f" {self.currency} ({self.cost_basis})"


# One row's values -> (why the send refuses the row, or None; the text the provider sends for it).
RowRule = Callable[[Mapping[str, Any]], tuple[str | None, str]]


def fill_rule(
    text: str,
    text_problem: Callable[[str], str | None] | None = None,
    *,
    missing_allowed: bool = False,
    remove_missing: bool = False,
    own_columns: Collection[str] = (),
) -> RowRule:
    """The sends' ``{name}`` rule (:func:`fill_problem`) as a :data:`RowRule`.

    ``missing_allowed`` / ``remove_missing``: Mobizon's ``placeholders_flag`` 1 / 2 (a row
    without a value is sent with the placeholder kept / removed, and counted with that text);
    ``own_columns``: columns the provider reads itself (BSG's ``reference_id``), not values.
    """
    needed = bool(placeholders(text))

    def rule(params: Mapping[str, Any]) -> tuple[str | None, str]:
        if not params and not needed:  # the common plain row: nothing to fill, nothing to check
            return None, text
        problem = fill_problem(text, params, text_problem, missing_allowed=missing_allowed,
                               remove_missing=remove_missing, own_columns=own_columns)  # fmt: skip
        if problem is not None or not needed:
            return problem, text
        return None, fill_placeholders(text, params, remove_missing=remove_missing)

    return rule


def estimate_audience(
    text: Any,
    recipients: Any,
    pricer: Pricer,
    *,
    provider: str,
    number_field: str = "recipient",
    min_digits: int = 10,
    max_digits: int = 15,
    sample_size: int = 3,
    max_reported: int = 20,
    text_problem: Callable[[str], str | None] | None = None,
    row_rule: RowRule | None = None,
) -> Estimate:
    """Read ``recipients`` once and estimate sending ``text`` to them (see the module docstring).

    A row whose ``{placeholder}`` has no value is rejected like a row with a bad number; so is a
    row whose values make the text too long for the provider (``text_problem``, the send's rule),
    and a row bringing values to a text without placeholders. ``row_rule`` replaces that rule
    when the send fills rows otherwise (:func:`fill_rule` with a provider's options, or
    Ogangi's file rule). Raises :class:`SmsValidationError` for a bad text or a bad source,
    not for a bad row.
    """
    text = check_text(text)
    rule = row_rule if row_rule is not None else fill_rule(text, text_problem)
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 0:
        raise SmsValidationError(f"sample_size must be an integer >= 0, got {sample_size!r}",
                                 field="sample_size", value=sample_size)
    if recipients is None or recipients == [] or recipients == "":
        raise SmsValidationError("recipients is empty: there is no audience", field="recipients", value=recipients)
    report = RejectReport(cap=max_reported)
    duplicates = DuplicateReport(cap=max_reported)
    parts_of: dict[int, int] = {}
    encodings: dict[str, int] = {}
    samples: list[dict[str, str]] = []
    count = total = 0
    rows: Iterable[Any] = iter_recipients(recipients, number_field=number_field, on_invalid="skip", report=report,
                                          min_digits=min_digits, max_digits=max_digits, duplicates=duplicates)
    for recipient in rows:
        # The sends' own per-row rule and words (recipients.fill_problem): a row a send skips is never counted.
        problem, filled = rule(recipient.params)
        if problem is not None:
            report.add(recipient.row, recipient.raw, problem)
            continue
        encoding, _, parts = sms_parts(filled)
        count += 1
        total += parts
        parts_of[parts] = parts_of.get(parts, 0) + 1
        encodings[encoding] = encodings.get(encoding, 0) + 1
        if len(samples) < sample_size:
            samples.append({"to": masked(recipient.number), "text": filled[:_SHOWN_SAMPLE]})
        pricer.add(recipient.number, filled, parts)
    cost, currency, basis = pricer.result() if count else (0.0, None, "no recipient to price")
    summary = report.summary()
    return Estimate(
        provider=provider, recipients=count, rejected=summary["rejected"], rejected_examples=summary["examples"],
        duplicates=duplicates.count, parts=parts_of, encodings=encodings, total_parts=total,
        cost=cost, currency=currency, cost_basis=basis, samples=samples,
    )  # fmt: skip


__all__ = [
    "CURRENCY_FIELD",
    "RATE_FIELD",
    "Estimate",
    "Pricer",
    "RatePricer",
    "RowRule",
    "UnknownPricer",
    "connection_rate",
    "estimate_audience",
    "fill_rule",
    "masked",
]
