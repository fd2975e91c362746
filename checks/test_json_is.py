import json

import pytest

from checks import json_is
from tests.checksite import JSON_BODY

CASES = [
    pytest.param("/json", json.dumps(JSON_BODY), "success", id="same-document-as-text"),
    pytest.param("/json", JSON_BODY, "success", id="same-document-as-yaml"),
    pytest.param("/json", json.dumps({**JSON_BODY, "count": 4}), "failure", id="one-value-differs"),
    pytest.param("/json", '{"status": "up"}', "failure", id="subset-is-not-equal"),
    pytest.param("/not-json", '{"a": 1}', "error", id="body-not-json-is-error"),
]


@pytest.mark.parametrize(("path", "expected", "status"), CASES)
async def test_json_is(site, path, expected, status):
    outcome = await site.check(path, json_is.NAME, expected)
    assert outcome.status == status, outcome.detail


def test_expected_is_canonical_json():
    assert json_is.parse('{"b": 1, "a": null}') == '{"a":null,"b":1}'
    assert json_is.parse("null") == "null"
    # As Argos: a whole number is the text of a JSON document, the number.
    assert json_is.parse(42) == "42"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param('{"a": 1', "expected a JSON document, Expecting ',' delimiter", id="bad-json"),
        pytest.param(1.5, "expected a JSON document such as", id="decimal-number"),
        pytest.param(True, "expected a JSON document such as", id="boolean"),
    ],
)
def test_parse_refuses(value, message):
    with pytest.raises(ValueError) as err:
        json_is.parse(value)
    assert message in str(err.value)
