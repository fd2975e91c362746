import pytest

from checks import http_to_https

# The site serves http:// and https:// on one port, so an https:// target's http:// twin
# (same port) is real: these cases exercise the prober's second request.
CASES = [
    pytest.param("/to-https", True, "https", "success", id="true-301-to-https"),
    pytest.param("/to-https", True, "http", "success", id="http-target-judged-directly"),
    pytest.param("/to-https", 301, "https", "success", id="exact-code"),
    pytest.param("/to-https", [302, 307], "https", "failure", id="code-not-in-list"),
    pytest.param("/to-https-308", {"start": 301, "stop": 309}, "https", "success", id="in-range"),
    pytest.param(
        "/to-https-308", {"start": 301, "stop": 308}, "https", "failure", id="stop-excluded"
    ),
    pytest.param("/ok", True, "https", "failure", id="no-redirect"),
    # As Argos 0.10.3 (tests/test_argos_http_to_https.py): the status only is judged.
    pytest.param("/to-http", True, "https", "success", id="location-not-https"),
    pytest.param("/to-other-host", True, "https", "success", id="location-other-host"),
    pytest.param("/no-location", True, "https", "success", id="no-location-header"),
    pytest.param("/moved", True, "https", "success", id="relative-location-stays-http"),
]


@pytest.mark.parametrize(("path", "expected", "scheme", "status"), CASES)
async def test_http_to_https(site, path, expected, scheme, status):
    outcome = await site.check(path, http_to_https.NAME, expected, scheme)
    assert outcome.status == status, outcome.detail


async def test_detail_says_where_it_went(site):
    outcome = await site.check("/to-http", http_to_https.NAME, True, "https")
    assert outcome.detail == (
        f"{site.url('/to-http')} answered 301 to {site.url('/ok')} (not an https:// URL)"
    )


@pytest.mark.parametrize(
    ("url", "twin"),
    [
        pytest.param("https://ex.org/a?b", "http://ex.org/a?b", id="default-port"),
        pytest.param("https://ex.org:443/a", "http://ex.org/a", id="explicit-443-becomes-80"),
        pytest.param("https://ex.org:8443/a", "http://ex.org:8443/a", id="other-port-kept"),
        pytest.param("http://ex.org/a", "http://ex.org/a", id="http-is-itself"),
    ],
)
def test_target_is_the_http_twin(url, twin):
    assert http_to_https.target_url(url) == twin


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        pytest.param(True, {"start": 300, "stop": 400}, id="true"),
        pytest.param(301, [301], id="code"),
        pytest.param([302, 301, 302], [301, 302], id="list"),
    ],
)
def test_parse(value, normalised):
    assert http_to_https.parse(value) == normalised


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(False, "expected true, a status code (301)", id="false"),
        pytest.param(200, "200 is not a redirection status (300-399)", id="not-a-redirect"),
        pytest.param(
            {"start": 308, "stop": 301}, "start (308) must be below stop (301)", id="empty-range"
        ),
        pytest.param({"start": 301}, "exactly the keys start and stop", id="half-range"),
    ],
)
def test_parse_refuses(value, message):
    with pytest.raises(ValueError) as err:
        http_to_https.parse(value)
    assert message in str(err.value)
