import pytest

from checks import body_like

CASES = [
    pytest.param("/ok", r"fine\s+here", "success", id="regex-found"),
    pytest.param("/ok", r"^Everything", "success", id="anchored-start"),
    pytest.param("/ok", r"^fine", "failure", id="anchor-not-at-start"),
    pytest.param("/json", r'"version": "2\.\d+', "success", id="version-pattern"),
    pytest.param("/broken", r"fine", "failure", id="absent"),
]


@pytest.mark.parametrize(("path", "expected", "status"), CASES)
async def test_body_like(site, path, expected, status):
    outcome = await site.check(path, body_like.NAME, expected, "https")
    assert outcome.status == status, outcome.detail


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            "(unclosed",
            "invalid regular expression '(unclosed': missing ), "
            "unterminated subpattern at position 0",
            id="bad-regex",
        ),
        pytest.param("", "expected a regular expression as a non-empty string", id="empty"),
        pytest.param(["a"], "got a list", id="list"),
        pytest.param(True, "got bool True", id="boolean"),
    ],
)
def test_parse_refuses(value, message):
    with pytest.raises(ValueError) as err:
        body_like.parse(value)
    assert message in str(err.value)


def test_parse_reads_a_whole_number_as_its_text():
    """As Argos: ``body-like: 404`` is the pattern 404."""
    assert body_like.parse(404) == "404"
