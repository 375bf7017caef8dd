"""Take the reference screenshots in docs/screenshots/ from a running app with
the demo data (``make run``), in headless Chromium:

    .venv/bin/python -m tests.browser.reference_screenshots http://127.0.0.1:6543 docs/screenshots

It signs in as the demo user "ada" (password ``conduit-demo``) for the
logged-in pages.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

DEMO_EMAIL, DEMO_PASSWORD = "ada@demo.conduit", "conduit-demo"


def main() -> None:
    base, folder = sys.argv[1].rstrip("/"), Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=base, viewport={"width": 1200, "height": 800})

        def shot(name: str, url: str) -> None:
            page.goto(url)
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
            print(folder / f"{name}.png")

        shot("home", "/")
        slug = page.locator(".preview-link").first.get_attribute("href")
        shot("article", str(slug))
        shot("login", "/login")
        page.fill('input[name="email"]', DEMO_EMAIL)
        page.fill('input[name="password"]', DEMO_PASSWORD)
        with page.expect_navigation():
            page.click('button[type="submit"]')
        shot("your-feed", "/?feed=following")
        shot("profile", "/profile/ada")
        page.goto("/editor")
        page.fill('input[name="title"]', "Sessions in Redis")
        page.fill('input[name="description"]', "Any replica, any request")
        page.fill('textarea[name="body"]', "Log in on one replica, carry on on another.")
        for tag in ("pyramid", "redis"):
            page.fill('input[placeholder="Enter tags"]', tag)
            page.press('input[placeholder="Enter tags"]', "Enter")
        page.screenshot(path=str(folder / "editor.png"), full_page=True)
        print(folder / "editor.png")
        browser.close()


if __name__ == "__main__":
    main()
