"""Fixtures for the check tables: a real HTTP + HTTPS site (tests/checksite.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme

from tests.checksite import CheckSite


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def site(ca: trustme.CA) -> Iterator[CheckSite]:
    with CheckSite(ca) as s:
        yield s
