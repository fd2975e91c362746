"""What an agent reads of every request's URL, cheaper and the same whatever the URL: its host
(``other_family``: an address of the other IP version is refused before aiohttp fails on
it) from its authority alone, parsed once per host, as yarl reads it from the whole URL; its
query's pairs (``checks/masking.py``: the values of parameters named like secrets) without
``urlsplit`` for a plain URL, as ``urlsplit`` cuts them."""

from __future__ import annotations

from urllib.parse import urlsplit

from hypothesis import example, given, settings
from hypothesis import strategies as st
from yarl import URL

from checks.observe.common import _host_of
from configuration.redaction import query_pairs

_PIECES = ["http:", "https:", "//", "/", "?", "#", "@", ":", "[", "]", "::1", "%41", "\\", " "]
_PIECES += ["=", "&", "\t", "\n", "é", "\x00", "token="]
_urls = st.lists(
    st.one_of(st.sampled_from(_PIECES), st.text(alphabet="aZ09.-_:", max_size=6)), max_size=8
).map("".join)


def _answer(read: object, url: str) -> str:
    try:
        return repr(read(url))  # type: ignore[operator]
    except Exception as exc:  # yarl's refusal (a bad port, a bad address) must stay the same
        return type(exc).__name__


@settings(max_examples=2000, deadline=None)
@given(_urls)
def test_the_host_is_yarls(url: str) -> None:
    assert _answer(_host_of, url) == _answer(lambda u: URL(u).raw_host or "", url)


@given(st.sampled_from(["/p", "/p?q=1", "?x=/y", "#f/g", ""]))
def test_urls_of_one_host_share_one_parse(rest: str) -> None:
    assert _host_of("http://user@Host.example:8080" + rest) == "host.example"


@settings(max_examples=2000, deadline=None)
@given(_urls)
@example("http://[::1?x=1")  # urlsplit refuses it: so does the prober's read of it
@example("http://h]/p?x=1")
@example("http://[::1]:80/p?token=x#f")
def test_the_query_pairs_are_urlsplits(url: str) -> None:
    def split(u: str) -> list[tuple[str, str, str]]:
        return [pair.partition("=") for pair in urlsplit(u).query.split("&")]

    assert _answer(query_pairs, url) == _answer(split, url)
