"""The Timeline and Grid page (gateway/ui/, docs/ui.md) end to end in a real
headless Chromium, against the real gateway in front of the services and
PostgreSQL: sign in, the client search, every interval, both views, sorting,
filtering, CSV export, live mode, the network ranking, the error cases, the
URL state, keyboard use, and 10,000 events. Each view's screenshot is saved
under test-artifacts/ui/."""

from __future__ import annotations

import csv
import datetime as dt
import io
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import expect

from connlog.core.server import start_service
from tests.support.gateway import envoy_in_front
from tests.ui import seed
from tests.ui.conftest import ARTIFACTS, key_script


async def ready(page) -> None:
    await expect(page.locator("html")).to_have_attribute("data-state", "ready", timeout=60_000)


async def sign_in(b, key: str, query: str = "") -> None:
    page = b.page
    await page.goto(f"{b.url}/ui/{'?' + query if query else ''}")
    await expect(page.locator("#api-key")).to_be_visible()
    await page.fill("#api-key", key)
    await page.press("#api-key", "Enter")
    await expect(page.locator("#app")).to_be_visible()
    await ready(page)


async def timeline_events(page) -> str | None:
    return await page.locator("#timeline").get_attribute("data-events")


def state_of(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


async def choose_client(page, typed: str, key: str) -> None:
    """Pick a client by typing part of it into the search box."""
    await page.fill("#client-search", typed)
    option = page.locator(f"#client-options [role=option][data-key='{key}']")
    await expect(option).to_be_visible()
    await option.click()
    await expect(page.locator("#client-search")).to_have_value(key)
    await ready(page)


async def test_sign_in_pick_a_client_by_search_and_see_its_timeline(browsing, seeded):
    page = browsing.page
    await page.goto(f"{browsing.url}/ui/")
    await expect(page.locator("#sign-in")).to_be_visible()
    await page.screenshot(path=ARTIFACTS / "sign-in.png")
    await sign_in(browsing, seeded.key, f"network={seeded.data.network}")
    # the key stays in this tab's session storage, never in the URL
    assert await page.evaluate("sessionStorage.getItem('connlog.apiKey')") == seeded.key
    assert seeded.key not in page.url
    networks = await page.locator("#network option").all_inner_texts()
    assert any(seeded.data.network in n for n in networks)
    # search as you type: a MAC prefix in another form finds client A
    await choose_client(page, "F0-D7-AA-00-00-0", seed.MAC_A)
    assert state_of(page)["client"] == seed.MAC_A
    assert await timeline_events(page) == str(seed.A_RECENT)
    assert int(await page.locator("#timeline").get_attribute("data-sessions")) >= 1
    # the summary strip from the insights API
    await expect(page.locator("[data-tile=success-rate] .big")).to_contain_text("%")
    await expect(page.locator("[data-tile=by-step]")).to_contain_text("Authentication: 2")
    await expect(page.locator("[data-tile=by-category]")).to_contain_text("#8")
    await expect(page.locator("[data-tile=time-to-connect]")).to_contain_text("p50")
    await expect(page.locator("[data-tile=time-to-connect]")).to_contain_text("connections")
    # a client id finds its client too
    await page.fill("#client-search", "PRINTER")
    await expect(page.locator(f"#client-options [data-key='{seed.ID_B}']")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.locator("#client-options")).to_be_hidden()
    # sign out forgets the key
    await page.click("#sign-out")
    await expect(page.locator("#sign-in")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('connlog.apiKey')") is None


async def test_every_interval_button_and_a_custom_range(browsing, seeded):
    page = browsing.page
    await sign_in(browsing, seeded.key, f"network={seeded.data.network}&client={seed.MAC_A}")
    for interval, count in seed.A_COUNTS.items():
        await page.click(f"#interval-buttons [data-interval='{interval}']")
        await ready(page)
        await expect(page.locator(f"#interval-buttons [data-interval='{interval}']")).to_have_attribute(
            "aria-pressed", "true")
        assert state_of(page)["interval"] == interval
        assert await timeline_events(page) == str(count), interval
    # a custom range around the event of 3 h 30 min ago only
    when = seeded.data.base - dt.timedelta(hours=3, minutes=30)
    start = (when - dt.timedelta(minutes=10)).astimezone()
    end = (when + dt.timedelta(minutes=10)).astimezone()
    await page.fill("#custom-start", start.strftime("%Y-%m-%dT%H:%M"))
    await page.fill("#custom-end", end.strftime("%Y-%m-%dT%H:%M"))
    await page.click("#custom-apply")
    await ready(page)
    assert await timeline_events(page) == "1"
    url = state_of(page)
    assert "interval" not in url and url["start"] and url["end"]
    assert await page.locator("#interval-buttons [aria-pressed='true']").count() == 0
    # a backwards range is refused with a message, nothing loaded
    await page.fill("#custom-start", end.strftime("%Y-%m-%dT%H:%M"))
    await page.fill("#custom-end", start.strftime("%Y-%m-%dT%H:%M"))
    await page.click("#custom-apply")
    await expect(page.locator("#message")).to_contain_text("start before its end")


async def test_timeline_details_and_keyboard_moves_between_events(browsing, seeded):
    page = browsing.page
    await sign_in(browsing, seeded.key, f"network={seeded.data.network}&client={seed.MAC_A}&interval=2h")
    canvas = page.locator("#timeline")
    await canvas.focus()
    # focusing the timeline puts the first event in focus, described in words
    await expect(page.locator("#timeline-focus")).to_contain_text("Association Success (1 of 9)")
    for _ in range(5):
        await page.keyboard.press("ArrowRight")
    await expect(page.locator("#timeline-focus")).to_contain_text("Authentication Failure (6 of 9)")
    await expect(page.locator("#timeline-focus")).to_contain_text("category #8")
    await page.keyboard.press("Enter")
    details = page.locator("#details")
    await expect(details).to_be_visible()
    await expect(details).to_contain_text("Failure category")
    await expect(details).to_contain_text(seed.QUOTED_REASON)
    await expect(details).to_contain_text("Specific failure")
    await expect(details).to_contain_text("Maximum retries for 3/4 msg reached.")
    await expect(details).to_contain_text("radio.qualityValue")  # every field, flattened
    await page.screenshot(path=ARTIFACTS / "timeline.png", full_page=True)
    await page.keyboard.press("Escape")
    await expect(details).to_be_hidden()
    await expect(canvas).to_be_focused()
    # Up to the sessions lane: a session with the roam to the Lab AP
    for _ in range(4):
        await page.keyboard.press("ArrowUp")
    await expect(page.locator("#timeline-focus")).to_contain_text("Session")
    await expect(page.locator("#timeline-focus")).to_contain_text("Lobby-AP → Lab-AP")
    await page.keyboard.press("End")
    await expect(page.locator("#timeline-focus")).to_contain_text("Disassociation Informational (9 of 9)")
    # the DHCP latency is among the fields of its event
    await page.keyboard.press("Home")
    await page.keyboard.press("ArrowRight")
    await page.keyboard.press("ArrowRight")
    await expect(page.locator("#timeline-focus")).to_contain_text("DHCP 120 ms")
    # hovering a mark shows its fields, a click opens them
    x = float(await canvas.get_attribute("data-focus-x"))
    y = float(await canvas.get_attribute("data-focus-y"))
    await canvas.hover(position={"x": x, "y": y})
    await expect(page.locator("#tooltip")).to_be_visible()
    await expect(page.locator("#tooltip")).to_contain_text("DHCP Success")
    await canvas.click(position={"x": x, "y": y})
    await expect(details).to_be_visible()
    await expect(details).to_contain_text("timing.dhcpLatency")


async def test_grid_sorts_filters_and_exports_csv(browsing, seeded):
    page = browsing.page
    await sign_in(browsing, seeded.key, f"network={seeded.data.network}&client={seed.MAC_A}&interval=2h&view=grid")
    await expect(page.locator("#view-grid")).to_be_visible()
    await expect(page.locator("#grid-count")).to_have_text(f"{seed.A_RECENT} of {seed.A_RECENT} events")
    rows = page.locator("#grid-body tr.row")
    await expect(rows).to_have_count(seed.A_RECENT)
    # sorting: by step ascending, then descending
    step_header = page.locator("#grid-head th[data-key='step']")
    await step_header.locator("button").click()
    await expect(step_header).to_have_attribute("aria-sort", "ascending")
    await expect(rows.first.locator("td").nth(1)).to_have_text("Association")
    await step_header.locator("button").click()
    await expect(step_header).to_have_attribute("aria-sort", "descending")
    await expect(rows.first.locator("td").nth(1)).to_have_text("Roam")
    assert state_of(page)["sort"] == "step:desc"
    # filtering: text, step, outcome
    await page.fill("#grid-filter", "eapol")
    await expect(page.locator("#grid-count")).to_have_text(f"2 of {seed.A_RECENT} events")
    await page.fill("#grid-filter", "")
    await page.select_option("#grid-outcome", "failure")
    await expect(page.locator("#grid-count")).to_have_text(f"3 of {seed.A_RECENT} events")
    await page.select_option("#grid-step", "CONNECTION_STEP_AUTHENTICATION")
    await expect(page.locator("#grid-count")).to_have_text(f"2 of {seed.A_RECENT} events")
    assert state_of(page)["outcome"] == "failure"
    await page.screenshot(path=ARTIFACTS / "grid.png", full_page=True)
    # CSV of the filtered rows: quoted where needed, a formula defused
    async with page.expect_download() as info:
        await page.click("#csv")
    download = await info.value
    text = (await download.path()).read_text(encoding="utf-8")
    assert download.suggested_filename.endswith(".csv")
    assert '"#8 EAPOL ""4-way"" handshake, timeout"' in text
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 2
    assert {r["Step"] for r in table} == {"Authentication"} and {r["Outcome"] for r in table} == {"Failure"}
    assert {r["Failure category"] for r in table} == {f"#8 {seed.QUOTED_REASON}"}
    assert {r["Specific failure"] for r in table} == {"#41 Maximum retries for 3/4 msg reached."}
    assert {r["Subtype"] for r in table} == {"", f"'{seed.FORMULA}"}
    assert all(r["event"].startswith(f"networks/{seeded.data.network}/connectionEvents/") for r in table)
    # the details of a row
    await rows.first.locator("button").click()
    await expect(page.locator("#details")).to_contain_text("Specific failure")
    await page.click("#details-close")
    await expect(page.locator("#details")).to_be_hidden()


async def test_csv_cells_are_quoted_and_formulas_defused(browsing, seeded):
    page = browsing.page
    await page.goto(f"{browsing.url}/ui/")
    cells = await page.evaluate("""async () => {
        const m = await import('./model.js');
        return ['plain', 'a,b', 'say "hi"', 'two\\nlines', '=1+2', '+cmd', '-12.5', '@x', ' pad'].map(m.csvCell);
    }""")
    assert cells == ["plain", '"a,b"', '"say ""hi"""', '"two\nlines"', "'=1+2", "'+cmd", "-12.5", "'@x", '" pad"']


async def test_live_mode_appends_a_newly_ingested_event(browsing, seeded, clients):
    page = browsing.page
    await sign_in(browsing, seeded.key, f"network={seeded.data.network}&client={seed.MAC_E}&interval=2h")
    before = int(await timeline_events(page))
    await page.click("#live")
    await expect(page.locator("#live")).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#live")).to_have_attribute("data-phase", "open")
    assert state_of(page)["live"] == "1"
    # another client's event is not shown; client E's is, in both views
    other = seed.event(seeded.data.network, seed.now(), seed.ASSOC, seed.S, mac=seed.MAC_D)
    fresh = seed.event(seeded.data.network, seed.now(), seed.AUTH, seed.F, mac=seed.MAC_E, code=8, reason="live one")
    await seed.send(clients, seeded.tenant, [other, fresh])
    await expect(page.locator("#timeline")).to_have_attribute("data-events", str(before + 1), timeout=30_000)
    await expect(page.locator("#status")).to_contain_text("Live: 1 new event received")
    await page.click("#tab-grid")
    await expect(page.locator("#grid-count")).to_have_text(f"{before + 1} of {before + 1} events")
    await expect(page.locator("#grid-body")).to_contain_text("live one")
    # toggled off: the stream stops
    await page.click("#live")
    await expect(page.locator("#live")).to_have_attribute("aria-pressed", "false")
    await expect(page.locator("#live")).to_have_attribute("data-phase", "stopped")
    assert "live" not in state_of(page)


async def test_network_view_ranks_aps_and_ssids_and_links_to_their_clients(browsing, seeded):
    page = browsing.page
    await sign_in(browsing, seeded.key, f"network={seeded.data.network}&interval=2h&view=network")
    aps = page.locator("table[data-ranking='access point'] tbody tr")
    # the highest failure rate first (a group of access points by serial names only the serial)
    await expect(aps.first.locator("th")).to_have_text("Q-LAB")
    await expect(aps.first).to_contain_text("75.0 %")
    ssids = page.locator("table[data-ranking='ssid'] tbody tr")
    await expect(ssids.first.locator("th")).to_have_text("corp")
    await page.screenshot(path=ARTIFACTS / "network.png", full_page=True)
    await aps.first.get_by_role("link", name="Clients").click()
    await ready(page)
    assert state_of(page)["ap"] == "Q-LAB"
    clients = page.locator("table[data-ranking='client'] tbody tr")
    await expect(clients).to_have_count(1)
    await expect(clients.first.locator("th")).to_have_text(seed.MAC_A)
    # the client's link opens its timeline
    await clients.first.get_by_role("link", name="Timeline").click()
    await ready(page)
    assert state_of(page)["client"] == seed.MAC_A and state_of(page)["view"] == "timeline"
    assert await timeline_events(page) == str(seed.A_RECENT)
    # an SSID's clients
    await page.goto(f"{browsing.url}/ui/?network={seeded.data.network}&interval=2h&view=network&ssid=guest")
    await ready(page)
    await expect(page.locator("table[data-ranking='client'] tbody tr th")).to_have_text([seed.MAC_D])


async def test_a_bad_key_is_refused_with_a_clear_message(browsing, seeded):
    page = browsing.page
    await page.goto(f"{browsing.url}/ui/")
    await page.fill("#api-key", "cl_nope_0000")
    await page.press("#api-key", "Enter")
    await expect(page.locator("#message")).to_contain_text("refused (HTTP 401)")
    await expect(page.locator("#sign-in")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('connlog.apiKey')") is None
    await page.screenshot(path=ARTIFACTS / "error-bad-key.png")


async def test_no_events_in_the_interval_is_said(browsing, seeded):
    page = browsing.page
    await sign_in(browsing, seeded.key, f"network={seeded.data.network}&interval=2h")
    await choose_client(page, "printer", seed.ID_B)
    await expect(page.locator("#message")).to_contain_text(f"No events for {seed.ID_B} in this interval")
    await expect(page.locator("#message")).to_have_attribute("data-kind", "empty")
    assert await timeline_events(page) == "0"
    await page.click("#interval-buttons [data-interval='8h']")
    await ready(page)
    assert await timeline_events(page) == "2"
    await expect(page.locator("#message")).to_be_hidden()


async def test_gateway_down_is_said(browsing, seeded, suite, tmp_path):
    page = browsing.page
    async with envoy_in_front(suite.settings, tmp_path, ingest=suite.ingest_address,
                              query=suite.query_address) as own:
        browsing.url = own.url
        await sign_in(browsing, seeded.key, f"network={seeded.data.network}&client={seed.MAC_A}")
        assert await timeline_events(page) == str(seed.A_RECENT)
    # the gateway stopped: Refresh says it cannot be reached
    await page.click("#refresh")
    await expect(page.locator("#message")).to_contain_text("gateway cannot be reached")
    await expect(page.locator("#message")).to_have_attribute("data-kind", "network")
    await page.screenshot(path=ARTIFACTS / "error-gateway-down.png")


@pytest.fixture
async def one_watch_gateway(suite, tmp_path):
    """A query service that takes one live watch at most, behind an Envoy of its own."""
    from connlog.query.servicer import register as register_query

    settings = suite.settings.model_copy(update={"watch_max_watchers": 1, "rollup_maintainer": False})
    query = await start_service("query", settings, register_query, port=0, metrics_port=0)
    try:
        async with envoy_in_front(settings, tmp_path, ingest=suite.ingest_address,
                                  query=f"127.0.0.1:{query.port}") as own:
            yield own
    finally:
        await query.stop(1)


async def test_rate_limited_is_said_with_retry_after(browsing, seeded, one_watch_gateway):
    page = browsing.page
    browsing.url = one_watch_gateway.url
    headers = {"authorization": f"Bearer {seeded.key}"}
    async with httpx.AsyncClient(base_url=one_watch_gateway.url, headers=headers, timeout=60) as http:
        # someone else holds the only watch
        async with http.stream("GET", f"/v1/networks/{seeded.data.network}/connectionEvents:watch") as held:
            assert held.status_code == 200
            await sign_in(browsing, seeded.key, f"network={seeded.data.network}&client={seed.MAC_A}")
            await page.click("#live")
            message = page.locator("#message")
            await expect(message).to_have_attribute("data-kind", "rate")
            await expect(message).to_contain_text("Rate limited (HTTP 429)")
            await expect(message).to_contain_text("Retry in 2 s")
            await expect(message).to_contain_text("reconnects by itself")
            await page.screenshot(path=ARTIFACTS / "error-rate-limited.png")
        # the watch freed: live mode gets in by itself
        await expect(page.locator("#live")).to_have_attribute("data-phase", "open", timeout=30_000)
        await expect(page.locator("#message")).to_be_hidden()


async def test_the_view_state_is_in_the_url_and_restored_on_reload(browsing, seeded):
    page = browsing.page
    await sign_in(browsing, seeded.key, f"network={seeded.data.network}")
    await choose_client(page, "f0d7aa000001", seed.MAC_A)
    await page.click("#interval-buttons [data-interval='4h']")
    await ready(page)
    await page.click("#tab-grid")
    await page.locator("#grid-head th[data-key='outcome'] button").click()
    await page.fill("#grid-filter", "lab")
    await expect(page.locator("#grid-count")).to_have_text(f"5 of {seed.A_COUNTS['4h']} events")
    url = page.url
    await page.reload()
    await ready(page)
    assert page.url == url
    await expect(page.locator("#view-grid")).to_be_visible()
    await expect(page.locator("#tab-grid")).to_have_attribute("aria-selected", "true")
    await expect(page.locator("#client-search")).to_have_value(seed.MAC_A)
    await expect(page.locator("#interval-buttons [data-interval='4h']")).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#grid-filter")).to_have_value("lab")
    await expect(page.locator("#grid-head th[data-key='outcome']")).to_have_attribute("aria-sort", "ascending")
    await expect(page.locator("#grid-count")).to_have_text(f"5 of {seed.A_COUNTS['4h']} events")
    # a link opens the same view in a new tab once signed in there
    other = await page.context.new_page()
    await other.add_init_script(key_script(seeded.key))
    await other.goto(url)
    await ready(other)
    await expect(other.locator("#grid-count")).to_have_text(f"5 of {seed.A_COUNTS['4h']} events")
    await other.close()


async def focus_by_tab(page, selector: str, limit: int = 40) -> None:
    """Press Tab until ``selector`` has the focus (keyboard only)."""
    for _ in range(limit):
        if await page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


async def test_the_main_flow_with_the_keyboard_only(browsing, seeded):
    page = browsing.page
    await page.goto(f"{browsing.url}/ui/?network={seeded.data.network}&interval=2h")
    await focus_by_tab(page, "#api-key")
    await page.keyboard.type(seeded.key)
    await page.keyboard.press("Enter")
    await ready(page)
    # after signing in the focus is in the client search
    await expect(page.locator("#client-search")).to_be_focused()
    await page.keyboard.type("f0:d7:aa:00:00:0")
    await expect(page.locator("#client-options [role=option]").first).to_be_visible()
    await page.keyboard.press("ArrowDown")
    active = await page.get_attribute("#client-search", "aria-activedescendant")
    assert active
    key = await page.get_attribute(f"#{active}", "data-key")
    while key != seed.MAC_A:
        await page.keyboard.press("ArrowDown")
        active = await page.get_attribute("#client-search", "aria-activedescendant")
        key = await page.get_attribute(f"#{active}", "data-key")
    await page.keyboard.press("Enter")
    await ready(page)
    assert state_of(page)["client"] == seed.MAC_A
    # an interval button with Space
    await focus_by_tab(page, "[data-interval='4h']")
    await page.keyboard.press("Space")
    await ready(page)
    assert await timeline_events(page) == str(seed.A_COUNTS["4h"])
    # the tabs with the arrow keys
    await focus_by_tab(page, "#tab-timeline")
    await page.keyboard.press("ArrowRight")
    await expect(page.locator("#view-grid")).to_be_visible()
    await expect(page.locator("#tab-grid")).to_be_focused()
    await page.keyboard.press("ArrowLeft")
    await expect(page.locator("#view-timeline")).to_be_visible()
    # into the timeline, to an event, its details, and back
    await focus_by_tab(page, "#timeline")
    await page.keyboard.press("ArrowRight")
    await page.keyboard.press("Enter")
    await expect(page.locator("#details")).to_be_visible()
    await expect(page.locator("#details-title")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.locator("#timeline")).to_be_focused()
    # visible focus: the focused control has an outline
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")


async def test_ten_thousand_events_load_and_stay_usable(browsing, seeded):
    page = browsing.page
    await page.add_init_script(key_script(seeded.key))
    await page.goto(f"{browsing.url}/ui/?network={seeded.data.big_network}&client={seed.MAC_C}&interval=2h")
    await ready(page)
    load_ms = int(await page.get_attribute("html", "data-load-ms"))
    assert await timeline_events(page) == str(seed.BIG)
    (ARTIFACTS / "load-time.txt").write_text(f"{seed.BIG} events: interactive {load_ms} ms after navigation start\n")
    print(f"\n{seed.BIG} events: the page was interactive {load_ms} ms after navigation start")
    # the timeline moves at once
    await page.locator("#timeline").focus()
    await page.keyboard.press("End")
    await expect(page.locator("#timeline-focus")).to_contain_text(f"({seed.BIG} of {seed.BIG})")
    # the grid holds every row but only those in view are in the document
    await page.click("#tab-grid")
    await expect(page.locator("#grid-count")).to_have_text(f"{seed.BIG} of {seed.BIG} events")
    assert await page.locator("#grid-body tr.row").count() < 200
    await page.locator("#grid-scroll").evaluate("(e) => { e.scrollTop = e.scrollHeight; }")
    await expect(page.locator(f"#grid-body tr.row[aria-rowindex='{seed.BIG + 1}']")).to_be_visible()
    await page.fill("#grid-filter", "Lab-AP")
    await expect(page.locator("#grid-count")).to_have_text(f"{len(range(1, seed.BIG, 3))} of {seed.BIG} events")
    await page.click("#tab-timeline")
    await page.screenshot(path=ARTIFACTS / "timeline-10000.png", full_page=True)


async def test_no_inline_script_or_style_is_needed(browsing, seeded):
    """The page works under its own Content-Security-Policy (the fixture fails
    the test on any CSP report); the policy is what the gateway sends."""
    page = browsing.page
    response = await page.goto(f"{browsing.url}/ui/")
    headers = response.headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    html = await response.text()
    assert "<script>" not in html and "style=" not in html and " on" not in html.replace("\n", " ").split("<body")[0]

