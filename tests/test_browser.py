"""The built HTML book, read in a real browser: Debian's Chromium, driven by chromedriver.

The book is built once for the module from the chapters' stored outputs (as
``test_book.py`` builds it), served on 127.0.0.1, and every page is opened once at desktop
width (1280 px) and once at phone width (390 px, phone emulation: the page's viewport meta
and overlay scrollbars apply). One script per visit (``site_checks.PAGE_PROBE``) collects
what the checks judge, so each check reports every page and element at fault:

- no JavaScript error on the browser console (SEVERE entries, failed loads included);
- no Markdown table left unrendered (a paragraph of pipes with a ``|---|`` separator);
- every ``<img>`` has an alt text that describes it, not a file name or hash;
- every internal link leads to a page that exists, and to an element with its ``#anchor``
  (read from the HTML files; external links are only collected);
- the page does not scroll sideways (wide code and tables scroll in their own boxes);
- the search page finds ``reset_states``, ``initial_state`` and ``Bidirectional``.

Nothing is downloaded: the browser and its driver are the system's
(``sudo apt-get install chromium chromium-driver``); without them the browser tests skip.
``BOOK_HTML=_build/html`` checks an existing build instead of building one;
``BOOK_SCREENSHOTS=folder`` also saves screenshots of a few pages, light and dark.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import site_checks

INSTALL = "sudo apt-get install chromium chromium-driver"
# name: (width, height, phone emulation)
VIEWPORTS = {"desktop": (1280, 900, False), "phone": (390, 844, True)}
SEARCHES = ("reset_states", "initial_state", "Bidirectional")
SCREENSHOT_PAGES = (
    "intro.html",
    "chapters/01_state_anatomy.html",
    "chapters/04_numeric_state.html",
    "api.html",
    "errors.html",
)
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # No outside network on the test machines: without these Chromium keeps trying to reach
    # Google's services and floods the log with refused connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@pytest.fixture(scope="module")
def html_folder(built_book: Any) -> Path:
    """The site to check: BOOK_HTML if set (an existing build), else the session's build (tests/conftest.py)."""
    given = os.environ.get("BOOK_HTML")
    if given:
        folder = Path(given).resolve()
        assert (folder / "intro.html").is_file(), f"BOOK_HTML={given} holds no intro.html"
        return folder
    folder = Path(built_book.html)
    # A build with warnings still writes the pages (--keep-going); test_book fails on the warnings.
    if not (folder / "intro.html").is_file():
        pytest.fail("the book did not build:\n" + built_book.log[-6000:])
    return folder


@pytest.fixture(scope="module")
def pages(html_folder: Path) -> list[str]:
    found = site_checks.site_pages(html_folder)
    assert "intro.html" in found and any(page.startswith("chapters/") for page in found), found
    return found


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def site(html_folder: Path) -> Iterator[str]:
    """The site's address, served from `html_folder` by a background thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html_folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    """One headless Chromium for the module, with a fresh profile, logging the console."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.skip(f"needs Chromium and chromedriver on PATH: {INSTALL}")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the test extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="lstm-book-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(chromedriver), options=options)
    browser.set_page_load_timeout(30)
    browser.set_script_timeout(15)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def set_viewport(browser: Any, name: str) -> None:
    width, height, phone = VIEWPORTS[name]
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": phone},
    )


def severe(browser: Any) -> list[str]:
    """The SEVERE console entries since the last call (reading the log empties it)."""
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def without_address(message: str) -> str:
    """A console entry without the address and line it starts with (``http://...?q=x 60:12 Uncaught ...``)."""
    return re.sub(r"^\S+ \d+:\d+ ", "", message)


@dataclass
class Visit:
    probe: dict[str, Any]  # what site_checks.PAGE_PROBE returned
    errors: list[str]  # SEVERE console entries while the page loaded and was probed


def save_screenshots(browser: Any, folder: Path, page: str, viewport: str) -> None:
    stem = page.removesuffix(".html").replace("/", "_")
    time.sleep(0.5)  # MathJax and the theme's scripts finish drawing
    browser.save_screenshot(str(folder / f"{stem}-{VIEWPORTS[viewport][0]}-light.png"))
    browser.execute_script("document.documentElement.dataset.theme = 'dark';")
    time.sleep(0.3)
    browser.save_screenshot(str(folder / f"{stem}-{VIEWPORTS[viewport][0]}-dark.png"))


@pytest.fixture(scope="module")
def visits(driver: Any, site: str, pages: list[str]) -> dict[str, dict[str, Visit]]:
    """Every page opened once per viewport: ``visits[viewport][page]``."""
    shots = os.environ.get("BOOK_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
    severe(driver)  # start from an empty log
    result: dict[str, dict[str, Visit]] = {}
    for viewport in VIEWPORTS:
        set_viewport(driver, viewport)
        result[viewport] = {}
        for page in pages:
            driver.get(site + page)  # returns once the page has loaded
            probe = driver.execute_async_script(site_checks.PAGE_PROBE)
            assert "error" not in probe, f"{page}: the probe failed: {probe['error']}"
            result[viewport][page] = Visit(probe=probe, errors=severe(driver))
            if shots and page in SCREENSHOT_PAGES:
                save_screenshots(driver, Path(shots), page, viewport)
                severe(driver)
    return result


def report(what: str, faults: list[str]) -> str:
    return f"{what}: {len(faults)}\n" + "\n".join(faults)


def test_every_internal_link_leads_to_a_page_and_an_anchor_that_exist(
    html_folder: Path, pages: list[str], record_property: Any
) -> None:
    links = site_checks.check_links(html_folder, pages)
    assert links.checked > 10 * len(pages), f"only {links.checked} internal links found on {len(pages)} pages"
    record_property("external_links", links.external)  # collected, not fetched
    assert not links.broken, report("internal links to a missing page or anchor", links.broken)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_pages_load_without_javascript_errors(visits: dict[str, dict[str, Visit]], viewport: str) -> None:
    # One line per distinct error, with every page it happens on.
    pages_of: dict[str, list[str]] = {}
    for page, visit in visits[viewport].items():
        for message in visit.errors:
            pages_of.setdefault(without_address(message), []).append(page)
    faults = [f"{message}\n    on {len(on)} pages: {', '.join(on)}" for message, on in pages_of.items()]
    assert not faults, report(f"console errors at {viewport} width", faults)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_pages_do_not_scroll_sideways(visits: dict[str, dict[str, Visit]], viewport: str) -> None:
    faults = []
    for page, visit in visits[viewport].items():
        probe = visit.probe
        assert probe["width"] <= VIEWPORTS[viewport][0], probe  # the viewport is the one asked for
        if probe["scrollWidth"] > probe["width"] + 1:
            faults.append(f"{page}: {probe['scrollWidth']} px wide in a {probe['width']} px viewport")
            faults += [
                f"    {group['where']}: {', '.join(group['items'])} reach {group['right']} px: {group['text']!r}"
                for group in probe["overflow"]
            ] or ["    (no single element found)"]
    assert not faults, report(f"pages wider than the viewport at {viewport} width", faults)


def test_no_markdown_table_is_left_unrendered(visits: dict[str, dict[str, Visit]]) -> None:
    faults = [
        f"{page}: {paragraph['where']}: {paragraph['text'][:120]!r}"
        for page, visit in visits["desktop"].items()
        if site_checks.is_content_page(page)
        for paragraph in visit.probe["paragraphs"]
        if site_checks.is_raw_table(paragraph["text"])
    ]
    assert not faults, report("paragraphs that are raw Markdown tables", faults)


def test_every_image_has_an_alt_text_that_describes_it(visits: dict[str, dict[str, Visit]]) -> None:
    checked = 0
    faults = []
    for page, visit in visits["desktop"].items():
        if not site_checks.is_content_page(page):
            continue
        for image in visit.probe["images"]:
            checked += 1
            why = site_checks.bad_alt_text(image["alt"], image["src"])
            if why:
                faults.append(f"{page}: {image['where']} src={image['src']!r} alt={image['alt']!r}: {why}")
    assert checked > len(visits["desktop"]), f"only {checked} images found"  # a logo per page, and plots
    assert not faults, report("images without a describing alt text", faults)


@pytest.mark.parametrize("query", SEARCHES)
def test_search_finds(driver: Any, site: str, visits: dict[str, dict[str, Visit]], query: str) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    set_viewport(driver, "desktop")
    severe(driver)
    driver.get(f"{site}search.html?q={quote(query)}")
    finished = "const s = document.querySelector('#search-results .search-summary'); return !!s?.textContent.trim();"
    try:
        WebDriverWait(driver, 15, poll_frequency=0.2).until(lambda browser: browser.execute_script(finished))
    except TimeoutException:
        shown = driver.execute_script("return (document.getElementById('search-results') || document.body).innerText;")
        pytest.fail(f"the search for {query!r} did not finish in 15 s; the page shows {shown!r}; {severe(driver)}")
    found = driver.execute_script(
        "return [...document.querySelectorAll('#search-results ul.search li a')].map((a) => a.getAttribute('href'));"
    )
    summary = driver.execute_script("return document.querySelector('#search-results .search-summary').textContent;")
    assert found, f"the search for {query!r} lists nothing: {summary.strip()!r}"
    # Errors that searching causes; those of the search page itself are test_pages_load_without_javascript_errors'.
    search_page = visits["desktop"].get("search.html")
    on_load = {without_address(message) for message in (search_page.errors if search_page else [])}
    errors = [message for message in severe(driver) if without_address(message) not in on_load]
    assert not errors, report(f"console errors while searching for {query!r}", errors)


# The checks can fail: each one on a made-up page or value that breaks it.


def test_the_checks_catch_bad_alt_texts_and_raw_tables() -> None:
    src = "../_images/9e495e4d03d83318b330173a7e1def709761c899eee67f01427d31ac46606206.png"
    for alt in (None, "", "  ", src, "9e495e4d03d83318b330173a7e1def709761c899eee67f01427d31ac46606206", "plot.png"):
        assert site_checks.bad_alt_text(alt, src), alt
    assert site_checks.bad_alt_text("Two heat maps over time steps: h stays within -1 and 1.", src) is None
    for text in ("| case | Keras 3 |\n|---|---|", "| a | b | | --- | --- | | 1 | 2 |", "|a|b| |:--|—|", "| x |—|"):
        assert site_checks.is_raw_table(text), text
    for text in ("| is the pipe operator", "a | b |---|", "|x| a | b |"):
        assert not site_checks.is_raw_table(text), text


def test_the_link_check_catches_a_missing_page_and_anchor(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.html").write_text(
        '<a href="sub/b.html#here">ok</a><a href="sub/b.html#gone">anchor</a><a href="c.html">page</a>'
        '<a href="https://keras.io/">out</a><a href="#top">self</a><p id="top"></p>',
        encoding="utf8",
    )
    (tmp_path / "sub" / "b.html").write_text('<h1 id="here">b</h1><a href="/a.html#top">root</a>', encoding="utf8")
    links = site_checks.check_links(tmp_path, ["a.html", "sub/b.html"])
    assert links.broken == [
        "a.html: sub/b.html#gone (no id 'gone' on sub/b.html)",
        "a.html: c.html (no file c.html)",
    ]
    assert links.external == ["https://keras.io/"]
    assert links.checked == 5


def test_the_probe_sees_a_page_that_scrolls_sideways_and_a_script_error(driver: Any) -> None:
    set_viewport(driver, "phone")
    severe(driver)
    page = (
        "<!DOCTYPE html><meta name='viewport' content='width=device-width'><body style='margin:0'>"
        "<div style='overflow-x:auto'><pre style='width:900px'>scrolls in its box</pre></div>"
        "<p id='wide' style='width:700px'>too wide</p><script>notDefinedAnywhere()</script>"
    )
    driver.get("data:text/html;charset=utf-8," + quote(page))
    probe = driver.execute_async_script(site_checks.PAGE_PROBE)
    assert probe["width"] == 390
    assert probe["scrollWidth"] == 700
    assert [(group["where"], group["items"], group["right"]) for group in probe["overflow"]] == [
        ("body", ["p#wide"], 700)
    ]
    errors = severe(driver)
    assert len(errors) == 1 and "notDefinedAnywhere" in errors[0], errors
