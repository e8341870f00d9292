"""Every form a secret may take when it is echoed back: what the secret tests look for."""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote, quote_plus, urlencode

import httpx

# Characters whose encodings differ between percent-encoding styles, form encoding, JSON and HTML.
HOSTILE_CHARS = "+/=%&"


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def _json_all_escaped(secret: str, upper: bool) -> str:
    return "".join(c if c.isascii() and c.isalnum() else f"\\u{ord(c):04X}" if upper else f"\\u{ord(c):04x}"
                   for c in secret)


def encodings(secret: str) -> dict[str, str]:
    """Every way a provider, proxy or client may write ``secret`` back, by name."""
    data = secret.encode()
    return {
        "raw": secret,
        "quote": quote(secret, safe=""),
        "quote-lower-hex": _lower_hex(quote(secret, safe="")),
        "quote-keep-slash": quote(secret),
        "quote_plus": quote_plus(secret),
        "quote_plus-lower-hex": _lower_hex(quote_plus(secret)),
        "form": urlencode({"apiKey": secret}).split("=", 1)[1],
        "httpx-query": str(httpx.URL("http://h/p", params={"k": secret}).params).split("=", 1)[1],
        "double-quoted": quote(quote(secret, safe=""), safe=""),
        "json": json.dumps(secret)[1:-1],
        "json-ascii": json.dumps(secret, ensure_ascii=True)[1:-1],
        "json-slash": json.dumps(secret)[1:-1].replace("/", "\\/"),
        "json-u-lower": _json_all_escaped(secret, upper=False),
        "json-u-upper": _json_all_escaped(secret, upper=True),
        "json-in-json": json.dumps(json.dumps(secret))[3:-3],
        "html": html.escape(secret),
        "html-numeric": "".join(c if c.isalnum() else f"&#{ord(c)};" for c in secret),
        "html-hex": "".join(c if c.isalnum() else f"&#x{ord(c):X};" for c in secret),
        "base64": base64.b64encode(data).decode(),
        "base64-urlsafe": base64.urlsafe_b64encode(data).decode().rstrip("="),
        # Basic auth's base64(login:key): only the characters made of the key's bits alone
        "base64-after-login": _embedded_base64(b"user:", data),
        "base64-after-4-bytes": _embedded_base64(b"pet:", data),
        # a traceback, a frame's locals or a logged request body: repr() of the text and of its bytes
        "repr": repr(secret)[1:-1],
        "repr-bytes": repr(data)[2:-1],
    }


def _embedded_base64(prefix: bytes, data: bytes) -> str:
    """The part of ``base64(prefix + data + b"!")`` that depends on ``data`` alone (no partial character)."""
    encoded = base64.b64encode(prefix + data + b"!").decode()
    return encoded[-(-8 * len(prefix) // 6):8 * (len(prefix) + len(data)) // 6]


def echo(secret: str) -> str:
    """A provider's or proxy's error text quoting ``secret`` in several forms at once."""
    forms = encodings(secret)
    return (f"invalid key {forms['raw']} (query apiKey={forms['quote']}, form {forms['quote_plus-lower-hex']}, "
            f"json \"{forms['json-slash']}\" / \"{forms['json-u-upper']}\", html {forms['html']})")


def leaks(haystack: str, secrets: set[str] | list[str]) -> list[str]:
    """Where any form of any secret shows: a short context before each hit (the secret not repeated)."""
    found = []
    for secret in secrets:
        for name, form in encodings(secret).items():
            at = haystack.find(form)
            if at >= 0:
                found.append(f"{name}: ..." + haystack[max(0, at - 80):at].replace("\n", " ") + "<SECRET>")
    return found
