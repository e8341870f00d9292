"""What a campaign task sent and where, identified by content rather than by position.

A retry re-reads its audience, and nothing promises the same order: a ``set``, a query
without ``ORDER BY`` or a file refreshed between tries comes back shuffled, and "skip the
first 500 rows" then skips the wrong 500. So the durable record keeps, for the whole
audience and for every part that left (a Mobizon upload prefix, a BSG chunk), a
:class:`Digest`: the count and an order-independent digest of the normalised numbers.

The digest is a multiset hash: the sum, modulo 2**128, of a 128-bit BLAKE2b of each
number. It is the same in any order, costs one hash per number, and takes O(1) memory
while the audience streams, so a million-row audience is digested without being held.
What is stored is small: one digest per part (≈ 50 bytes), never the numbers.

Deciding which numbers went where in a reordered audience needs the numbers themselves:
:mod:`.reconcile` reads them back from the provider (Mobizon ``message/list`` of the
campaign, BSG messages by campaign) into a ``set`` of ``int`` — about 70 bytes a number,
70 MB for a million: the bound this package accepts, paid only on such a resume.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_sms_provider.exceptions import SmsFatalError

_MOD = 1 << 128


def number_hash(number: int | str) -> int:
    """128 bits of BLAKE2b over the normalised number's digits (the same in every process).

    Normalised numbers are digit strings without leading zeros, so ``"380..."`` and
    ``380...`` hash the same; anything else is read as an int first.
    """
    text = number if isinstance(number, str) and number.isdigit() and number[:1] != "0" else str(int(number))
    return int.from_bytes(_blake2b(text.encode(), digest_size=16).digest(), "big")


_blake2b = hashlib.blake2b


class Digest:
    """An order-independent digest of a multiset of phone numbers, with its count."""

    __slots__ = ("count", "value")

    def __init__(self, count: int = 0, value: int = 0) -> None:
        self.count, self.value = count, value

    @classmethod
    def of(cls, numbers: Iterable[int | str]) -> Digest:
        digest = cls()
        for number in numbers:
            digest.add(number)
        return digest

    @classmethod
    def load(cls, record: Mapping[str, Any] | None) -> Digest | None:
        """A digest saved by :meth:`dump`, or None (nothing recorded, or an older record)."""
        if not isinstance(record, Mapping) or "digest" not in record:
            return None
        return cls(int(record.get("count") or 0), int(str(record["digest"]), 16))

    def add(self, number: int | str) -> None:
        # Reduced modulo 2**128 when read: a million additions make a 150-bit int, still cheap.
        self.count += 1
        self.value += number_hash(number)

    def copy(self) -> Digest:
        return Digest(self.count, self.value % _MOD)

    def dump(self) -> dict[str, Any]:
        return {"count": self.count, "digest": f"{self.value % _MOD:032x}"}

    @property
    def short(self) -> str:
        return f"{self.value % _MOD:032x}"[:12]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Digest) and (self.count, self.value % _MOD) == (other.count, other.value % _MOD)

    def __hash__(self) -> int:
        return hash((self.count, self.value % _MOD))

    def __repr__(self) -> str:
        return f"Digest({self.count:,} numbers, {self.short})"

    def describe(self) -> str:
        return f"{self.count:,} recipients (digest {self.short})"


def lines_digest(content: bytes) -> str:
    """A digest of a file's lines in any order (the lines sorted): for an upload built in memory."""
    return _blake2b(b"\n".join(sorted(content.splitlines())), digest_size=16).hexdigest()


class SequenceDigest:
    """An order-dependent digest of numbers in the order they were read: cheap enough for the upload's hot path.

    What a positional resume needs: "are the first N numbers read now the N an earlier try
    uploaded, in the same order?" One BLAKE2b update per portion (the numbers joined by
    commas), not one hash per number. When it differs the caller reconciles by content.
    """

    __slots__ = ("_hash", "count")

    def __init__(self) -> None:
        self._hash = _blake2b(digest_size=16)
        self.count = 0

    def update(self, numbers: list[str]) -> None:
        if numbers:
            self._hash.update((",".join(numbers) + ",").encode())
            self.count += len(numbers)

    def dump(self) -> dict[str, Any]:
        return {"count": self.count, "sequence": self._hash.hexdigest()}

    def matches(self, record: Mapping[str, Any] | None) -> bool:
        return isinstance(record, Mapping) and record == self.dump()


class Ledger:
    """The content record kept beside a task's progress in its :class:`~airflow_sms_provider.progress.Checkpoint`.

    ``audience``: the digest of the whole (valid) audience an earlier try read. Parts are
    recorded by the callers with :meth:`Digest.dump` next to their own fields.
    """

    AUDIENCE = "audience"

    def __init__(self, ckpt: Any) -> None:
        self.ckpt = ckpt

    @property
    def audience(self) -> Digest | None:
        return Digest.load(self.ckpt.get(self.AUDIENCE))

    def check_audience(self, now: Digest, *, sent: str | None, provider: str) -> None:
        """Compare the audience read now with the one an earlier try recorded; record it if none.

        ``sent`` describes what already left for that earlier audience (campaign ids and
        counts), None when nothing did: then a changed audience is simply the new one.
        A different audience after something left raises :class:`SmsFatalError` (no retry):
        resuming it could send some numbers twice and skip others.
        """
        before = self.audience
        if before is not None and before != now and sent:
            raise SmsFatalError(
                f"the audience changed between tries: an earlier try read {before.describe()}, this one "
                f"{now.describe()}, and {sent}. Resuming could message some numbers twice and skip others, so "
                "this task stops without retry: check what was sent, then run the remainder as a new task",
                provider=provider,
            )
        if before != now:
            self.ckpt.save(**{self.AUDIENCE: now.dump()})


__all__ = ["Digest", "Ledger", "SequenceDigest", "lines_digest", "number_hash"]
