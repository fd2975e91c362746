"""Every Argos file Tocsin reads (tests/test_argos_fields.py: each key given each value
pydantic coerces, null for an optional key, durations as durations_nlp writes them) can be
applied: the settings its ``config.applied`` carries, which are the values as the file wrote
them, are admitted by the event contract (``events/settings.py``), which reads them with the
file reader's converters (``events/values.py``). A file read but refused by the log could be
checked and never applied."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from configuration import config, published
from events import codec, subjects
from events.types import ConfigApplied
from tests.argos_fields import render
from tests.test_argos_fields import CASES


@pytest.mark.parametrize(("verdict", "keys", "why"), CASES)
def test_an_argos_file_tocsin_reads_is_applied(
    verdict: str, keys: dict[str, object], why: str, tmp_path: Path
) -> None:
    path = tmp_path / "argos.yaml"
    path.write_text(render(keys).text)
    try:
        cfg = config.parse(path, {})
    except config.ConfigError:
        return  # refused by the file's reader: never applied
    settings = published.public(cfg)
    event = ConfigApplied(
        at=time.time(), revision=cfg.digest, source=str(path), applied_by="t", settings=settings
    )
    data = codec.encode_admitted(event, subjects.CONFIG_APPLIED)
    assert codec.decode(data, subjects.CONFIG_APPLIED).settings == settings  # type: ignore[union-attr]
