"""A real browser for page tests: Debian's headless Chromium driven by selenium,
and the Flask app served over HTTP on a free local port.

A missing browser fails the test (never skips it) with the command that installs it.
With ``BILLSYNC_TEST_SCREENSHOTS=<dir>`` the tests save full-page screenshots there,
for people to look at.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DESKTOP, PHONE = 1280, 390  # window widths in CSS pixels (a phone: an iPhone 12–15)
SCREENSHOTS = "BILLSYNC_TEST_SCREENSHOTS"


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """``app`` on http://127.0.0.1:<free port> in a thread; yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="status-page-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def chromium(width: int = DESKTOP) -> Iterator[webdriver.Chrome]:
    """A headless Chromium ``width`` pixels wide; fails the test when it is not installed."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"the browser test needs {' and '.join(missing)}: run `bash deploy/ensure-browser.sh`"
            " (installs Debian's chromium and chromium-driver)",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1024",
        "--hide-scrollbars",  # the viewport is the whole window, as on a phone
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    # A window cannot be narrower than 500 px: a phone is emulated (viewport meta and all).
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 1024, "deviceScaleFactor": 1, "mobile": width < DESKTOP},
    )
    try:
        yield driver
    finally:
        driver.quit()


def overflow(driver: webdriver.Chrome) -> int:
    """How many pixels the page is wider than the window (0: no sideways scrolling)."""
    excess: int = driver.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth"
    )
    return max(0, excess)


def screenshot(driver: webdriver.Chrome, name: str) -> Path | None:
    """The whole page as ``<name>.png`` under $BILLSYNC_TEST_SCREENSHOTS, when it is set."""
    folder = os.environ.get(SCREENSHOTS)
    if not folder:
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
