"""Keep API keys, private keys and tokens out of log lines, exceptions and reprs.

Two layers:

* every secret a hook reads (and every BSG JWT it obtains) goes through
  :func:`register_secret`, which remembers it here and hands each of its encoded
  forms (:func:`forms`) to Airflow's secrets masker, so task and trigger logs are
  masked even for lines this package does not write;
* everything this package formats itself goes through :func:`redact_text`: every
  :class:`~airflow_sms_provider.exceptions.SmsProviderError` does it in its
  constructor (message, ``details``, and the httpx error it wraps), and a log
  filter does it for httpx's own "HTTP Request: ..." line. It also works outside a
  task, where Airflow's masker is not installed.

What :func:`redact_text` masks:

* a registered secret in any mixture of these encodings, character by character:
  raw; percent-encoded (``quote``, ``quote_plus``, httpx's and PHP's query
  encoding, upper- or lower-case hex, and encoded twice: ``%252B``); form-encoded
  (space as ``+``); JSON-escaped (``\\/``, ``\\u002b``, ``\\u002B``); HTML-escaped
  (``&amp;``, ``&#43;``, ``&#x2b;``), as an error page of a proxy writes it; backslash-escaped
  (JSON's ``\\"`` and ``\\\\``, ``repr()``'s ``\\'``, and a non-ASCII character as the ``\\xd0\\x96``
  of ``repr()`` of bytes, as a traceback or a logged request body shows it);
* a registered secret in base64 (standard or URL-safe alphabet, padded or not),
  also when it is embedded in a longer base64 value (``Basic base64(user:key)``):
  for each of the three byte offsets the run of base64 characters that depends on
  the secret alone is masked. Up to two characters at either end of that run
  (at most 12 bits of the secret) can stay: they also depend on the bytes around
  it, so they cannot be recognised without knowing those bytes;
* whatever the shape says is a credential, registered or not: anything shaped like
  a JWT (three base64url segments, the first starting ``eyJ``), the value after
  ``Bearer``/``Basic``, the values of ``apiKey=``, ``api_key=``, ``token=``,
  ``password=``... in a query string, and of ``"api_key": "..."`` ... in JSON, and
  the signature at the end of an Ogangi URL (``/rest/api/.../<64 hex>``).

Cost: one compiled pattern for all registered secrets, rebuilt only when a new
secret is registered; nothing here runs per request except the httpx log filter
(one pass when the httpx INFO line is enabled at all).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, quote_plus

MASK = "***"

# Shorter values would mask ordinary words; real keys are far longer.
_MIN_SECRET_LEN = 6
_MIN_BASE64_RUN = 8

_HTML_NAMED = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "(?:apos|#39)"}


def _hex(number: int, width: int = 0) -> str:
    """A regex for ``number`` in hex, upper or lower case digits."""
    digits = f"{number:0{width}x}"
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in digits)


def _char_pattern(char: str) -> str:
    """Every way the encoders above may write ``char``."""
    if char.isascii() and char.isalnum():
        return char
    utf8 = char.encode("utf-8")
    options = [re.escape(char)]
    options.append("".join(f"%{_hex(byte, 2)}" for byte in utf8))  # quote, any hex case
    options.append("".join(f"%25{_hex(byte, 2)}" for byte in utf8))  # quoted twice
    if ord(char) <= 0xFFFF:
        options.append(rf"(?:\\){{1,3}}u{_hex(ord(char), 4)}")  # JSON \u escape (also JSON in JSON)
    options.append(f"&#0*{ord(char)};")
    options.append(f"&#[xX]0*{_hex(ord(char))};")
    if char in _HTML_NAMED:
        options.append(f"&{_HTML_NAMED[char]};")
    if char == " ":
        options.append(r"\+")
    if char == "/":
        options.append(r"(?:\\){1,3}/")  # JSON's optional escape of '/' (also JSON in JSON)
    if char in "\"\\'":
        # JSON's \" and \\ (JSON in JSON doubles the backslashes), repr()'s \' and \\
        options.append(r"(?:\\){1,7}" + re.escape(char))
    if not char.isascii():
        options.append("".join(rf"\\x{byte:02x}" for byte in utf8))  # repr() of bytes: b'\xd0\x96'
    return "(?:" + "|".join(options) + ")"


def _jwt_shape() -> str:
    """A JWT: ``eyJ`` + base64url, three segments; the separators and ``_ -`` in any encoding."""
    char = f"(?:[A-Za-z0-9]|{_char_pattern('_')}|{_char_pattern('-')})"
    dot = _char_pattern(".")
    return f"eyJ{char}{{2,}}{dot}{char}{{2,}}{dot}{char}*"


_CREDENTIAL_NAMES = r"apikey|api_key|api-key|key|token|access_token|refresh_token|password|private_key|secret"
# Shape rules: (a substring the text must hold for the rule to apply, the rule). Group 1 of a
# rule is kept and the rest of its match masked. The substring test keeps the common case (a
# line with none of them) to a few ``in`` checks.
_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # a JWT anywhere: header.payload.signature, base64url, the header's JSON starts with '{"'
    # (its '.', '_' and '-' possibly percent-, JSON- or HTML-escaped: see _jwt_shape)
    ("eyJ", re.compile("()" + _jwt_shape())),
    # a query string parameter, also HTML-escaped (&amp;apiKey=) or percent-encoded in a URL
    ("=", re.compile(rf"((?i:[?&;](?:{_CREDENTIAL_NAMES})=))[^&#\s\"'<>]*")),
    ("%3", re.compile(rf"((?i:(?:[?&;]|%26|%3F)(?:{_CREDENTIAL_NAMES})%3D))[^&#\s\"'<>]*")),
    # Authorization values
    ("earer", re.compile(r"((?i:\bbearer\s+))[A-Za-z0-9\-_.=+/~]+")),
    ("EARER", re.compile(r"((?i:\bbearer\s+))[A-Za-z0-9\-_.=+/~]+")),
    ("asic", re.compile(r"((?i:\bbasic\s+))[A-Za-z0-9\-_.=+/~]+")),
    ("ASIC", re.compile(r"((?i:\bbasic\s+))[A-Za-z0-9\-_.=+/~]+")),
    # Ogangi's signature (the last path segment): it covers only the path parameters, not the
    # method, so a logged getBroadcast URL would also authorise stop/delete of that broadcast
    ("/rest/api/", re.compile(r"(/rest/api/[^\s?#\"'<>]*/)[0-9a-fA-F]{64}(?![0-9a-fA-F])")),
    # a JSON field, its quotes possibly JSON-escaped themselves
    ('"', re.compile(rf'((?i:"(?:{_CREDENTIAL_NAMES}|bearer|jwt)\\?"\s*:\s*\\?"))(?:[^"\\]|\\[^"])*')),
)


def _keep_prefix(match: re.Match[str]) -> str:
    return (match.group(1) or "") + MASK


def _redact_shapes(text: str) -> str:
    for needle, rule in _SHAPES:
        if needle in text:
            text = rule.sub(_keep_prefix, text)
    return text


def _base64_runs(secret: str) -> set[str]:
    """The base64 text that depends on ``secret`` alone, at each of the three byte offsets."""
    raw = secret.encode("utf-8")
    runs: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        start = -(-8 * offset // 6)  # the first character made of the secret's bits only
        end = 8 * (offset + len(raw)) // 6
        for run in (encoded[start:end], encoded.rstrip("=") if offset == 0 else ""):
            if len(run) >= _MIN_BASE64_RUN:
                runs.add(run)
                runs.add(run.replace("+", "-").replace("/", "_"))  # URL-safe alphabet
    if len(raw) % 3 == 0:
        runs.add(base64.b64encode(raw).decode("ascii"))
    return runs


def secret_pattern(secret: str) -> str:
    """A regex source matching ``secret`` in every encoding :func:`redact_text` covers."""
    encoded = "".join(_char_pattern(char) for char in secret)
    runs = sorted(_base64_runs(secret), key=len, reverse=True)
    return "|".join([encoded, *(re.escape(run) for run in runs)])


def forms(secret: str) -> list[str]:
    """Concrete encoded forms of ``secret``, for maskers that match plain strings (Airflow's).

    The mixtures :func:`redact_text` matches cannot be listed; these are the forms
    the encoders in use produce: raw, percent-encoded (safe ``""`` and ``"/"``,
    ``quote_plus``, httpx's query encoding; upper- and lower-case hex), JSON-escaped
    (plain, with ``\\/``, and every other character as ``\\u00xx`` in either case),
    HTML-escaped, ``repr()`` of the text and of its UTF-8 bytes (``b'\\xd0\\x96'``) and base64
    (see :func:`_base64_runs`).
    """
    out = [secret]
    for text in (quote(secret, safe=""), quote(secret, safe="/"), quote_plus(secret), quote_plus(secret, safe="/"),
                 quote(secret, safe="~"), quote_plus(secret, safe="~")):
        out += [text, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)]
    out.append(quote(quote(secret, safe=""), safe=""))
    escaped = json.dumps(secret)[1:-1]
    out += [escaped, escaped.replace("/", "\\/"), json.dumps(secret, ensure_ascii=False)[1:-1]]
    hex_all = "".join(c if c.isascii() and c.isalnum() else f"\\u{ord(c):04x}" for c in secret)
    out += [hex_all, _upper_hex_escapes(hex_all)]
    out.append("".join(f"&#{ord(c)};" if not c.isalnum() else c for c in secret))
    out.append(secret.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))
    out += [repr(secret)[1:-1], repr(secret.encode("utf-8"))[2:-1]]  # str and bytes reprs (tracebacks, locals)
    out += sorted(_base64_runs(secret))
    seen: set[str] = set()
    return [text for text in out if not (text in seen or seen.add(text))]  # type: ignore[func-returns-value]


def _upper_hex_escapes(text: str) -> str:
    return re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), text)


_lock = threading.Lock()
_known: set[str] = set()


@dataclass(frozen=True)
class _Matcher:
    """All registered secrets: one pattern, and literal anchors that every match contains."""

    pattern: re.Pattern[str]
    # Substrings of which each match holds at least one; None: always run the pattern.
    anchors: tuple[str, ...] | None

    def sub(self, text: str) -> str:
        if self.anchors is not None and not any(anchor in text for anchor in self.anchors):
            return text
        return self.pattern.sub(MASK, text)


def _anchor(secret: str) -> str | None:
    """The longest run of ASCII letters and digits: every encoding above keeps it as written."""
    runs = re.findall(r"[A-Za-z0-9]+", secret)
    best = max(runs, key=len, default="")
    return best if len(best) >= 3 else None


def _compile(secrets: Iterable[str]) -> _Matcher | None:
    ordered = sorted(set(secrets), key=len, reverse=True)  # a longer secret containing a shorter one first
    if not ordered:
        return None
    anchors: list[str] | None = []
    for secret in ordered:
        anchor = _anchor(secret)
        if anchor is None or anchors is None:
            anchors = None
        else:
            anchors += [anchor, *_base64_runs(secret)]
    pattern = re.compile("|".join(f"(?:{secret_pattern(secret)})" for secret in ordered))
    return _Matcher(pattern, None if anchors is None else tuple(dict.fromkeys(anchors)))


_matcher: _Matcher | None = None


def register_secret(value: str | None) -> None:
    """Remember ``value`` so it is masked everywhere from now on, and tell Airflow's masker every form."""
    global _matcher
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    with _lock:
        if value not in _known:
            _known.add(value)
            _matcher = _compile(_known)
    # Every time a connection is read, not once per process: a task's supervisor or a triggerer
    # learns the forms from this call (Airflow's masker ignores patterns it already has).
    _tell_airflow(forms(value))


_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")  # as a session keeps it


def register_token(value: str | None) -> None:
    """Mask a bearer token (BSG's JWT) from now on: cheaper than :func:`register_secret`.

    A JWT is base64url and dots, so every encoding above writes it unchanged, and
    :func:`redact_text` masks anything shaped like one anyway: only Airflow's masker is
    told (one pattern). A session renews its token often; registering each renewal as a
    key would grow the pattern of every later redaction. A token of another shape is
    registered as a secret.
    """
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    if _JWT.fullmatch(value):
        _tell_airflow([value])
    else:
        register_secret(value)


def _tell_airflow(values: list[str]) -> None:
    """Hand ``values`` (the raw secret first) to Airflow's masker."""
    try:
        from airflow.providers.common.compat.sdk import mask_secret
    except Exception:  # pragma: no cover - outside Airflow the local masking still applies
        return
    with contextlib.suppress(Exception):
        mask_secret(values[0])  # the raw value on its own, as Airflow itself does for a password
    if len(values) > 1:
        with contextlib.suppress(Exception):
            # The other forms in one list: one message to a task's supervisor for all of them.
            mask_secret(cast("Any", values[1:]))


def redact_text(text: str, extra: Iterable[str] = ()) -> str:
    """Return ``text`` with registered secrets (in every encoding) and credential-shaped values masked."""
    if not text:
        return text
    text = _redact_shapes(text)
    matcher = _matcher
    extra = [s for s in extra if s and len(s) >= _MIN_SECRET_LEN]
    if extra:
        with _lock:
            matcher = _compile([*_known, *extra])
    return text if matcher is None else matcher.sub(text)


def redact_value(value: Any, _depth: int = 0) -> Any:
    """``value`` with :func:`redact_text` applied to every string in it (dicts, lists, tuples, sets)."""
    if isinstance(value, str):
        return redact_text(value)
    if _depth > 20:
        return value
    if isinstance(value, dict):  # a subclass (defaultdict...) becomes a plain dict
        return {redact_value(k, _depth + 1): redact_value(v, _depth + 1) for k, v in value.items()}
    if type(value) in (list, tuple, set, frozenset):  # not namedtuples: their constructor differs
        return type(value)(redact_value(v, _depth + 1) for v in value)
    if isinstance(value, bytes):
        redacted = redact_text(value.decode("utf-8", "replace"))
        return redacted.encode("utf-8") if MASK in redacted else value
    return value


def scrub_exception(exc: BaseException | None) -> None:
    """Redact, in place, the arguments of ``exc`` and its chain, and the request URLs httpx errors carry.

    Called by the package's exception constructors for the exception being handled, so the
    httpx error a provider error wraps (printed in tracebacks as its cause) shows no secret.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < 10:
        seen.add(id(exc))
        with contextlib.suppress(Exception):  # an exotic exception type keeps its arguments
            exc.args = tuple(redact_value(arg) for arg in exc.args)
        request = getattr(exc, "_request", None)
        if request is not None and hasattr(request, "url"):
            try:
                import httpx

                url = str(request.url)
                redacted = redact_text(url)
                if redacted != url:
                    request.url = httpx.URL(redacted.replace(MASK, "%2A%2A%2A"))
            except Exception:  # pragma: no cover
                pass
        exc = exc.__cause__ or exc.__context__


def scrub_handled_exception() -> None:
    """:func:`scrub_exception` on the exception currently being handled, if any."""
    scrub_exception(sys.exc_info()[1])


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with :func:`redact_text` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_installed = False


def install_log_filters() -> None:
    """Attach the filter to the loggers that print request URLs (httpx, httpcore)."""
    global _installed
    if _installed:
        return
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).addFilter(RedactingFilter())
    _installed = True
