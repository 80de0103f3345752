"""The unit layer: fast tests of pure code, with no PostgreSQL, no Envoy and
no network (``pytest tests/unit`` starts none of them).

The fixtures of tests/conftest.py that start PostgreSQL, the services or
Envoy are off limits here: a unit test that asks for one is a usage error,
not a slow test."""

from __future__ import annotations

from pathlib import Path

import pytest

UNIT = Path(__file__).parent
# tests/conftest.py's fixtures that need a database, a service or Envoy
INTEGRATION_FIXTURES = frozenset(
    {"pg_server", "database_url", "settings", "pool", "suite", "clients", "make_tenant", "tenant", "gateway", "sync"}
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if UNIT not in Path(item.path).parents:
            continue
        wanted = INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if wanted:
            raise pytest.UsageError(
                f"{item.nodeid} is a unit test but uses {', '.join(sorted(wanted))} (PostgreSQL, services or Envoy):"
                " move it out of tests/unit"
            )
