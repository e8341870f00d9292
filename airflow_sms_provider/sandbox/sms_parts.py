"""How many SMS parts a text takes (GSM 03.38 and concatenated SMS): a fact of SMS, not of one provider.

GSM-7 carries 160 septets in one SMS and 153 per part of a longer one (extension characters take two
septets); anything outside the GSM-7 alphabet goes as UCS-2: 70 units alone, 67 per part.
"""

from __future__ import annotations

import functools
import math

GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXT = frozenset("^{}\\[~]|€\f")


def encoding_of(text: str) -> tuple[str, int]:
    """(encoding, length): GSM-7 septets (extension characters count 2) or UCS-2 units."""
    if all(ch in GSM7 or ch in GSM7_EXT for ch in text):
        return "GSM-7", sum(2 if ch in GSM7_EXT else 1 for ch in text)
    return "UCS-2", len(text.encode("utf-16-le")) // 2


@functools.lru_cache(maxsize=4096)
def parts_of(text: str) -> int:
    """SMS parts: GSM-7 160 / 153 per part, else UCS-2 70 / 67 (cached: a campaign repeats its texts)."""
    encoding, length = encoding_of(text)
    single, part = (160, 153) if encoding == "GSM-7" else (70, 67)
    return 1 if length <= single else math.ceil(length / part)
