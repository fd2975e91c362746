"""Fixtures for the check tables: a real HTTP + HTTPS site (tests/checksite.py) and a site
whose long answers arrive in pieces (tests/streamsite.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme

from tests.checksite import CheckSite
from tests.streamsite import StreamSite


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def site(ca: trustme.CA) -> Iterator[CheckSite]:
    with CheckSite(ca) as s:
        yield s


@pytest.fixture(scope="module")
def streams() -> Iterator[StreamSite]:
    with StreamSite() as s:
        yield s
