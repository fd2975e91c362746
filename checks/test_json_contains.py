import pytest

from checks import json_contains, json_has, json_is, json_like
from tests.probing import probe

CASES = [
    pytest.param("/json", ["/status"], "success", id="top-level-key"),
    pytest.param("/json", ["/items/1", "/nested/x"], "success", id="index-and-null-value"),
    pytest.param("/json", ["/a~1b"], "success", id="escaped-slash"),
    pytest.param("/json", [""], "success", id="whole-document"),
    pytest.param("/json", ["/items/2"], "failure", id="index-out-of-range"),
    pytest.param("/json", ["/status", "/missing"], "failure", id="one-missing"),
    pytest.param("/json", ["/status/deeper"], "failure", id="through-a-string"),
    pytest.param("/not-json", ["/status"], "error", id="body-not-json-is-error"),
]


@pytest.mark.parametrize(("path", "expected", "status"), CASES)
async def test_json_contains(site, path, expected, status):
    outcome = await site.check(path, json_contains.NAME, expected)
    assert outcome.status == status, outcome.detail


async def test_json_contains_on_long_chunked_document(streams):
    # The key comes after 300 kB, sent in pieces: a partial read is not JSON at all.
    done = await probe(f"{streams.url}/chunked-json", json_contains.NAME, ["/status"])
    assert done.outcomes[0].status == "success", done.outcomes[0].detail


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        pytest.param(json_contains.NAME, ["/status"], id="json-contains"),
        pytest.param(json_has.NAME, {"/status": "up"}, id="json-has"),
        pytest.param(json_is.NAME, {"status": "up"}, id="json-is"),
        pytest.param(json_like.NAME, {"/status": "u."}, id="json-like"),
    ],
)
async def test_a_document_past_the_agents_limit_is_said_cut(streams, kind, expected):
    """Past 1 MiB the body is cut: the check says so, not only that the rest is not JSON."""
    done = await probe(f"{streams.url}/huge-json", kind, expected)
    (outcome,) = done.outcomes
    assert outcome.status == "error"
    assert outcome.detail.startswith(
        "the body is longer than 1 MiB, the most the agent reads: its first MiB is not JSON "
        "(Unterminated string"
    ), outcome.detail


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            ["status"],
            "a JSON pointer starts with '/' (as in /status), got 'status'",
            id="no-leading-slash",
        ),
        pytest.param(
            ["/a~2"], "invalid JSON pointer '/a~2': '~' must be followed by 0 or 1", id="bad-escape"
        ),
        pytest.param("/status", "expected a non-empty list", id="string-not-list"),
    ],
)
def test_parse_refuses(value, message):
    with pytest.raises(ValueError) as err:
        json_contains.parse(value)
    assert message in str(err.value)
