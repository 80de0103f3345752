"""Fixtures of the browser tests: Debian's Chromium driven by Playwright
(never ``playwright install``: the executable is the system's), a tenant
whose networks hold known events, and pages signed in to the real gateway
(tests/conftest.py's ``gateway`` in front of the in-process services)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from connlog.store.accounts import AccountStore
from tests.support.services import Tenant, new_tenant
from tests.support.waiting import until
from tests.ui import seed

# Screenshots land here (gitignored), at the repository's root.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


def chromium_path() -> str | None:
    configured = os.environ.get("CONNLOG_CHROMIUM")
    if configured:
        return configured
    for name in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.path.exists(name):
            return name
    return shutil.which("chromium")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator:
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CONNLOG_REQUIRE_BROWSER"):
            pytest.fail("no Chromium: apt-get install chromium (or set CONNLOG_CHROMIUM)")
        pytest.skip("no Chromium (apt-get install chromium, or set CONNLOG_CHROMIUM)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]'")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, headless=True)
        yield browser
        await browser.close()


@dataclass
class Seeded:
    """The tenant of the browser tests and what its networks hold."""

    tenant: Tenant
    data: seed.Data
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.tenant.keys["viewer"]


@pytest.fixture(scope="session")
async def seeded(pool, clients, gateway) -> Seeded:
    """A tenant with the known events of ``tests/ui/seed.py``, once the
    client directory (ListClients) lists its clients."""
    tenant = await new_tenant(AccountStore(pool))
    data = await seed.ingest(clients, tenant)
    headers = {"authorization": f"Bearer {tenant.keys['viewer']}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=30) as http:
        async def listed() -> bool:
            for network, count in ((data.network, len(data.macs) + 1), (data.big_network, 1)):
                reply = await http.get(f"/v1/networks/{network}/clients", params={"pageSize": 100})
                if reply.status_code != 200 or len(reply.json().get("clients", [])) < count:
                    return False
            return True

        await until(listed, "the client directory to list the seeded clients", deadline=90)
    return Seeded(tenant, data)


@dataclass
class Browsing:
    """A page of its own context, and what went wrong in it."""

    page: object
    errors: list[str]
    url: str


@pytest.fixture
async def browsing(browser, gateway) -> AsyncIterator[Browsing]:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(f"page error: {err}"))

    def console(message) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            errors.append(f"CSP: {message.text}")

    page.on("console", console)
    page.set_default_timeout(30_000)
    try:
        yield Browsing(page, errors, gateway.url)
    finally:
        await context.close()
    assert errors == [], errors


def key_script(key: str) -> str:
    """A script that puts ``key`` in the page's session storage before the
    page's own scripts run (a tab that had signed in)."""
    return f"sessionStorage.setItem('connlog.apiKey', {json.dumps(key)});"
