"""The check catalogue: one module per kind, registered here by its configuration name.

Adding a kind: see docs/adding-a-check.md.
"""

from __future__ import annotations

from types import ModuleType

from services.agent.checks import body_contains, status_is

CATALOGUE: dict[str, ModuleType] = {m.NAME: m for m in (status_is, body_contains)}
