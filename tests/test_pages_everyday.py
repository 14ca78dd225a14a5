"""The pages as a newcomer meets them, in headless Chromium against a real `bentoml serve`: no
request leaves loopback from any page, nothing overflows a 390 px phone, `/` and `/ui` lead to
sign-in, every refusal is a styled page with a way back, a data scientist lands on an overview,
a month picker, a favicon, a visible focus outline and a skip link that covers nothing."""

from __future__ import annotations

from urllib.parse import urlparse

import httpx
import pytest

from tests import serving_fixtures
from tests.serving_fixtures import MONTHS, OPTED_OUT
from tests.test_pages_browser import FLAGS, browser, pytestmark  # noqa: F401  (fixture, marks)

built_home = serving_fixtures.built_home
server = serving_fixtures.server
MONTH = MONTHS[-1]
PHONE = {"width": 390, "height": 844}


def _context(browser, server, user=None, viewport=None):  # noqa: F811
    """A browser context (signed in as `user`) that records every request leaving loopback."""
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    outside: list[str] = []
    context.on(
        "request",
        lambda r: (
            urlparse(r.url).hostname not in ("127.0.0.1", None)
            and not r.url.startswith(("data:", "about:"))
            and outside.append(r.url)
        ),
    )
    page = context.new_page()
    if user:
        page.goto(f"{server.url}/ui/login")
        page.get_by_label("Access token").fill(server.tokens[user])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
    return context, page, outside


def _listed_person(server):
    body = {"neighbourhood": "North", "month": MONTH}
    r = httpx.post(f"{server.url}/list", json=body, headers=server.headers("north_team"))
    return r.json()["people"][0]["person_id"]


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_every_page_stays_on_loopback_and_fits_a_phone(browser, server):  # noqa: F811
    person = _listed_person(server)
    visits = {
        None: ["/", "/ui/login", "/ui/"],
        "north_clinician": [
            f"/ui/list?neighbourhood=North&month={MONTH}",
            f"/ui/person/{person}?month={MONTH}",
            f"/ui/segments?neighbourhood=North&month={MONTH}",
            f"/ui/person/{OPTED_OUT}?month={MONTH}",
            "/ui/no-such-page",
        ],
        "scientist": ["/ui/overview", "/docs"],
    }
    for user, paths in visits.items():
        context, page, outside = _context(browser, server, user, PHONE)
        try:
            for path in paths:
                page.goto(f"{server.url}{path}")
                page.wait_for_load_state("networkidle")
                if path != "/docs":  # Swagger UI's own layout is not ours to fit
                    assert _fits(page), f"{path} overflows a 390 px screen"
            assert outside == [], f"requests left loopback: {outside}"
        finally:
            context.close()


def test_root_and_ui_lead_to_sign_in_and_scientists_land_on_an_overview(browser, server):  # noqa: F811
    context, page, _ = _context(browser, server)
    try:
        for start in ("/", "/ui", "/ui/"):
            page.goto(f"{server.url}{start}")
            assert urlparse(page.url).path == "/ui/login", start
            assert page.get_by_label("Access token").is_visible()
        page.get_by_label("Access token").fill(server.tokens["scientist"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("#models")
        assert urlparse(page.url).path == "/ui/overview"
        assert page.locator("#runs tbody tr").count() == len(MONTHS)
        assert page.locator("#summary tbody tr").count() >= 2
        page.get_by_role("link", name="API").first.click()
        page.wait_for_selector("#swagger-ui .information-container", timeout=20_000)
    finally:
        context.close()


def test_refusals_are_styled_pages_with_a_way_back(browser, server):  # noqa: F811
    person = _listed_person(server)
    context, page, _ = _context(browser, server, "north_team")
    try:
        for path, status in (
            (f"/ui/person/{person}", 403),  # a team may not open person pages
            ("/ui/overview", 403),  # nor the data scientists' overview
            ("/ui/no-such-page", 404),
            ("/docs", 403),
        ):
            response = page.goto(f"{server.url}{path}")
            assert response.status == status, path
            assert page.locator("link[rel=stylesheet]").count() >= 1, path
            back = page.get_by_role("link", name="Back to your start page")
            assert back.is_visible(), path
        back.click()
        page.wait_for_selector("#risk-list")
    finally:
        context.close()


def test_month_picker_favicon_focus_and_skip_link(browser, server):  # noqa: F811
    person = _listed_person(server)
    context, page, _ = _context(browser, server, "north_clinician")
    try:
        page.goto(f"{server.url}/ui/list?neighbourhood=North&month={MONTH}")
        assert sorted(page.locator("#month option").all_inner_texts()) == sorted(MONTHS)
        page.select_option("#month", MONTHS[0])
        page.get_by_role("button", name="Show").click()
        page.wait_for_selector("#risk-list")
        assert page.locator("#data-month").inner_text() == MONTHS[0]

        icon = httpx.get(f"{server.url}/favicon.ico", follow_redirects=True)
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")
        assert page.locator("link[rel=icon]").get_attribute("href") == "/ui/favicon.svg"

        page.keyboard.press("Tab")  # the skip link comes first
        skip = page.locator("a.skip")
        assert skip.evaluate("a => a === document.activeElement")
        box, brand = skip.bounding_box(), page.locator(".brand").bounding_box()
        assert box["y"] + box["height"] <= brand["y"] or box["x"] >= brand["x"] + brand["width"]
        colour = skip.evaluate("a => getComputedStyle(a).outlineColor")
        assert _contrast(colour, "rgb(255, 255, 255)") >= 3.0, colour

        page.goto(f"{server.url}/ui/person/{person}?month={MONTH}")
        identity = page.locator("#identity").inner_text()
        assert identity.startswith("Aged ") and "GP practice " in identity
    finally:
        context.close()


def _luminance(rgb: str) -> float:
    values = [int(v) / 255 for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    linear = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in values]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two CSS rgb() colours."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("path", ["/ui/list?neighbourhood=North"])
def test_signed_out_page_requests_go_to_sign_in_not_a_bare_401(server, path):
    r = httpx.get(f"{server.url}{path}")
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    api = httpx.post(f"{server.url}/list", json={"neighbourhood": "North"})
    assert api.status_code == 401  # the API still answers 401
