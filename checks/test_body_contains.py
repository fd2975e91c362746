import pytest

from checks import body_contains
from checks.base import MAX_BODY
from tests.probing import probe
from tests.streamsite import FIRST_WORDS, LAST_WORDS, PAST_THE_LIMIT

CASES = [
    pytest.param("/ok", "fine", "http", "success", id="substring"),
    pytest.param("/ok", "fine", "https", "success", id="substring-over-https"),
    pytest.param("/ok", "Fine", "http", "failure", id="case-sensitive"),
    pytest.param("/json", '"status": "up"', "http", "success", id="json-text"),
    pytest.param("/broken", "fine", "http", "failure", id="absent"),
    pytest.param("/moved", "fine", "http", "failure", id="empty-body-of-redirect"),
]


@pytest.mark.parametrize(("path", "expected", "scheme", "status"), CASES)
async def test_body_contains(site, path, expected, scheme, status):
    outcome = await site.check(path, body_contains.NAME, expected, scheme)
    assert outcome.status == status, outcome.detail


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param(None, id="nothing"),
        pytest.param(True, id="boolean"),
        pytest.param(1.5, id="decimal-number"),
    ],
)
def test_parse_refuses(value):
    with pytest.raises(ValueError, match="expected a non-empty string"):
        body_contains.parse(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [pytest.param(42, "42", id="whole-number"), pytest.param(-1, "-1", id="negative")],
)
def test_parse_reads_a_whole_number_as_its_text(value, text):
    """As Argos: ``body-contains: 42`` looks for the text 42."""
    assert body_contains.parse(value) == text


LONG_CASES = [
    pytest.param("/chunked", LAST_WORDS, "success", id="end-of-chunked-300kB-page"),
    pytest.param("/paced", LAST_WORDS, "success", id="end-of-300kB-page-sent-slowly"),
    pytest.param("/huge", FIRST_WORDS, "success", id="start-of-page-over-the-limit"),
    pytest.param("/huge", PAST_THE_LIMIT, "failure", id="text-past-the-limit-not-read"),
]


@pytest.mark.parametrize(("path", "expected", "status"), LONG_CASES)
async def test_body_contains_on_long_pages(streams, path, expected, status):
    done = await probe(f"{streams.url}{path}", body_contains.NAME, expected)
    assert done.outcomes[0].status == status, done.outcomes[0].detail


async def test_page_over_the_limit_is_cut_without_error(streams):
    done = await probe(f"{streams.url}/huge", body_contains.NAME, FIRST_WORDS)
    assert done.observation.error is None
    assert done.observation.body_bytes == MAX_BODY
