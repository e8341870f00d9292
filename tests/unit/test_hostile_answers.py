"""A hostile or compromised provider answers with a redirect: it is never followed.

Following it would send Mobizon's API key (it is in the query string) or BSG's login body
to whatever host the Location names. httpx does not follow redirects unless asked, and the
package's clients do not ask: the 3xx is an error, with the secret-free excerpt of its body.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from airflow_sms_provider.exceptions import SmsProviderError
from airflow_sms_provider.protocols import bsg, mobizon, ogangi
from airflow_sms_provider.redaction import register_secret
from airflow_sms_provider.transport import RetryPolicy, client_options, send
from tests.secret_forms import leaks

KEY = "Redirect+Canary/Key=1%2&abcdef0123456789"
EVIL = "https://evil.example.net/collect"

CASES: dict[str, tuple[Any, Any]] = {
    "mobizon": (mobizon.build("user", "getOwnBalance", KEY), mobizon.parse),
    "bsg": (bsg.login(KEY), bsg.parse),
    "ogangi": (ogangi.get_shortcodes(ogangi.Account(8, "peter", "pub", KEY)), ogangi.parse),
}


@pytest.mark.parametrize("provider", sorted(CASES))
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_the_error_shows_no_key(provider: str, status: int) -> None:
    register_secret(KEY)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, headers={"Location": f"{EVIL}?echo={request.url}"},
                              text=f"moved: {request.url} {request.content.decode(errors='replace')}")

    request, parse = CASES[provider]
    options = client_options("https://api.example.com", 5.0, True)
    with httpx.Client(**options, transport=httpx.MockTransport(handler)) as client:
        assert client.follow_redirects is False
        with pytest.raises(SmsProviderError) as caught:
            send(client, request, parse, RetryPolicy(max_attempts=1))
    assert [r.url.host for r in seen] == ["api.example.com"]
    assert str(status) in str(caught.value)
    assert not leaks(f"{caught.value!s} {caught.value!r} {caught.value.details!r}", {KEY})
