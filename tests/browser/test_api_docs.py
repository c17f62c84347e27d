"""The API browser (/api/v1/docs) in Chromium: Swagger UI renders the API's operations from
Kithost's own origin, under its policy, loading nothing from anywhere else."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.async_api import Page, expect

from tests.browser.conftest import Kithost


async def test_the_api_browser_runs_from_kithost_alone(page: Page, kithost: Kithost) -> None:
    requested: list[str] = []
    complaints: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on(
        "console",
        lambda message: complaints.append(message.text) if message.type == "error" else None,
    )

    await page.goto(f"{kithost.url}/api/v1/docs")

    # Swagger UI renders the whole document's operations before the last ones show: seconds
    # on a busy box (the default 5 s failed a fresh-clone run on one).
    await expect(page.get_by_text("/oauth/token", exact=True).first).to_be_visible(timeout=30_000)
    await expect(page.locator(".opblock").first).to_be_visible()
    origins = {f"{u.scheme}://{u.netloc}" for u in map(urlsplit, requested) if u.scheme != "data"}
    assert origins == {kithost.url}
    assert complaints == []
