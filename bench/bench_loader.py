"""The loader's size, and how soon its launcher shows in Chromium.

Sizes come from the build's manifest (``embed && npm run build``; the build fails past
5,000 bytes gzipped). Time to launcher: the real ``kithost serve`` on a fresh data directory
(SQLite) seeded by ``kithost demo``, a small page on another loopback server (its origin
passed as ``KITHOST_PUBLIC_URL``, which the demo widget allows) with a snippet, and Debian's
Chromium. Two snippets: the widget's own script ``/embed/{pk}.js`` (the button drawn from
its preset: one round trip), and the older ``/embed.js`` with ``data-widget`` (the button
waits for ``GET /v1/embed/{pk}/config``: two). The figure is ``performance.now()`` when the
launcher button enters the page, i.e. from navigation start, all on loopback. "Cold" opens a
fresh browser profile each time (nothing cached); "warm" reloads in one profile (the script
from the HTTP cache, the config revalidated). Medians of ``RUNS``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright
from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, Site

from bench._common import (
    emit,
    free_port,
    kithost_env,
    seed_demo,
    service,
    stop_on_sigterm,
    wait_http,
)
from kithost.visitor.loader.service import DIST

ROOT = Path(__file__).resolve().parents[1]
RUNS = 15
WATCH = """<script>
new MutationObserver((_, observer) => {
  if (document.querySelector('.kithost-launcher')) {
    window.launcherAt = performance.now();
    observer.disconnect();
  }
}).observe(document.documentElement, {childList: true, subtree: true});
</script>"""


def sizes() -> None:
    manifest = json.loads((DIST / "manifest.json").read_text())
    for name in ("embed", "frame", "direct"):
        for encoding in ("raw", "gzip", "brotli"):
            note = "budget 5,000 B" if (name, encoding) == ("embed", "gzip") else ""
            emit("loader", f"{name}.js {encoding}", manifest[name][encoding], "bytes", note)


def time_to_launcher(page: Page, url: str) -> float:
    page.goto(url)
    page.wait_for_function("() => window.launcherAt !== undefined")
    value: float = page.evaluate("() => window.launcherAt")
    return value


def measure(browser: Browser, url: str) -> tuple[list[float], list[float]]:
    cold = []
    for _ in range(RUNS):
        context = browser.new_context()
        cold.append(time_to_launcher(context.new_page(), url))
        context.close()
    context = browser.new_context()
    page = context.new_page()
    time_to_launcher(page, url)
    warm = [time_to_launcher(page, url) for _ in range(RUNS)]
    context.close()
    return cold, warm


def main() -> None:
    stop_on_sigterm()
    sizes()
    with tempfile.TemporaryDirectory(prefix="kithost-bench-loader-") as tmp:
        data = Path(tmp)
        port = free_port()
        site = Site()
        env = kithost_env(data, port=str(port), public_url=site.origin, log_level="WARNING")
        public_key = seed_demo(env)
        api = f"http://127.0.0.1:{port}"
        snippets = {
            "/embed/{pk}.js": f'<script async src="{api}/embed/{public_key}.js"></script>',
            "/embed.js": f'<script async src="{api}/embed.js" data-widget="{public_key}"></script>',
        }
        urls = {label: site.page(WATCH + snippet) for label, snippet in snippets.items()}
        argv = [sys.executable, "-m", "kithost", "serve"]
        with (
            service("kithost serve", argv, env=env, cwd=ROOT, log_path=data / "serve.log") as proc,
            sync_playwright() as playwright,
        ):
            wait_http(f"{api}/healthz", proc)
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            results = {label: measure(browser, url) for label, url in urls.items()}
            browser.close()
        site.close()
    for snippet, (cold, warm) in results.items():
        for label, runs in (("cold", cold), ("warm", warm)):
            emit(
                "loader",
                f"time to launcher, {snippet}, {label}",
                statistics.median(runs),
                "ms",
                f"median of {RUNS}, min {min(runs):.0f}, max {max(runs):.0f}; Chromium, loopback",
            )


if __name__ == "__main__":
    main()
