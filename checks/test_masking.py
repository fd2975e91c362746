"""What of a request is secret to the agent, found where its URL and the log's differ, and how
texts quoting it are masked (tests/test_secret_texts.py runs it through the whole pipeline)."""

from __future__ import annotations

import time

import pytest

from checks.masking import RequestSecrets
from configuration import redaction
from events.types import CheckRequested, CheckSpec, RequestData


def _request(url: str, data: RequestData | None = None) -> CheckRequested:
    return CheckRequested(
        at=time.time(),
        request="g.default.1",
        group="g",
        location="default",
        url=url,
        method="GET",
        ip_version=4,
        timeout=5,
        due=time.time(),
        checks=[CheckSpec("t", "status-is", [200])],
        request_data=data,
    )


@pytest.mark.parametrize(
    ("url", "env", "quoted"),
    [
        pytest.param("https://h/hooks/ENVSECRET11/run", {"ENVSECRET11"}, None, id="one-in-path"),
        pytest.param(
            "https://h/AAAASECRET1/x?p=BBBBSECRET2",
            {"AAAASECRET1", "BBBBSECRET2"},
            None,
            id="one-in-path-one-in-query",
        ),
        pytest.param(
            "https://h/p/AAAA/qqqqqqqq/AAAA/rrrrrrrr",
            {"qqqqqqqq/AAAA", "rrrrrrrr"},
            None,
            id="two-masks-whose-neighbours-repeat-inside-a-value",
        ),
        pytest.param(
            "https://h/my secret value/x",
            {"my secret value"},
            "https://h/my%20secret%20value/x",
            id="quoted-by-the-http-client",
        ),
    ],
)
def test_the_logs_masks_say_what_of_the_url_is_secret(
    url: str, env: set[str], quoted: str | None
) -> None:
    """The agent knows the URL whole and as the log shows it (``${ENV}`` values masked): a text
    quoting the URL, as written or as the HTTP client quoted it, keeps none of them."""
    shown = redaction.public_url(url, env)
    secrets = RequestSecrets.of(_request(url), shown)
    said = secrets.text(f"400, message='Bad status line', url='{quoted or url}'")
    assert not [value for value in env if value in said or value.replace(" ", "%20") in said]
    assert redaction.MASK in said
    if quoted is None:
        assert said == f"400, message='Bad status line', url='{shown}'"


def test_a_short_secret_is_masked_whole_or_in_a_url_never_inside_words() -> None:
    """As the log masks short values (``redaction.MIN_INSIDE``): a whole text, or where the
    URL shows a parameter named like a secret; other words keep their letters."""
    data = RequestData(headers={"X-Key": "abc"})
    secrets = RequestSecrets.of(_request("http://h/p?sig=k3Y9z&page=2", data))
    assert secrets.text("abc") == redaction.hidden("abc")
    assert secrets.text("abcdef fabc") == "abcdef fabc"
    assert secrets.text("url='http://h/p?sig=k3Y9z&page=2'") == (
        f"url='http://h/p?sig={redaction.hidden('k3Y9z')}&page=2'"
    )


def test_a_basic_header_and_a_json_body_are_secret_in_every_form() -> None:
    data = RequestData(
        data='{"token": "bodySecret2x"}',
        is_json=True,
        headers={"Authorization": "Basic dG9jc2luOnVybFNlY3JldDN4"},  # tocsin:urlSecret3x
    )
    secrets = RequestSecrets.of(_request("https://h/p", data))
    said = secrets.text("echo: tocsin:urlSecret3x bodySecret2x")
    assert "urlSecret3x" not in said and "bodySecret2x" not in said
    assert not RequestSecrets.of(_request("https://h/p"))
