"""The built website, opened page by page in headless Chromium (`make book-test`).

The site is served from 127.0.0.1 by Python's http.server, and the browser
may reach nothing else: every other host resolves to nowhere, so a page that
fetched a script, a font or MathJax from the network would log an error.
Each page must load without console errors, typeset its maths, load its
images, and link only to pages and anchors that exist; the search box must
find a chapter by a term of its own; the hidden tests must be absent and the
solutions collapsed (or, in the student edition, absent). A screenshot of one
chapter page is written to _screenshots/ in the built site.
"""

from __future__ import annotations

import functools
import http.server
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
SITES = {"learner": ROOT / "build" / "book" / "html",
         "student": ROOT / "build" / "book-student" / "html"}
SCREENSHOT_PAGE = "chapters/09_tflite_quantization.html"
SEARCH = ("requantization", "chapters/09_tflite_quantization.html")


@pytest.fixture(scope="session")
def edition(request):
    return request.config.getoption("--edition")


@pytest.fixture(scope="session")
def site(edition):
    html = SITES[edition]
    if not (html / "index.html").exists():
        pytest.fail(f"no site at {html}: run `make book EDITION={edition}` first")
    return html


def pages(html: Path) -> list[str]:
    return sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                  if not p.relative_to(html).parts[0].startswith("_"))


@pytest.fixture(scope="session")
def server(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *args: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="session")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1600",
                # nothing but the site: every other host fails to resolve
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


class Links(HTMLParser):
    """Every href and src of a page, and every id it defines."""

    def __init__(self):
        super().__init__()
        self.targets, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.targets.append((tag, attrs[key]))


@functools.cache
def parsed(path: Path) -> Links:
    links = Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


def test_site_has_every_chapter(site):
    found = {p for p in pages(site) if p.startswith("chapters/")}
    notebooks = {f"chapters/{p.stem}.html" for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")}
    assert notebooks and notebooks <= found, f"chapters without a page: {sorted(notebooks - found)}"
    for page in ("index.html", "intro.html", "benchmark.html", "instructor_guide.html",
                 "data.html", "search.html"):
        assert (site / page).exists(), f"{page} missing from the site"


def test_internal_links_resolve_and_nothing_is_fetched_from_elsewhere(site):
    broken, external = [], []
    for page in pages(site):
        for tag, target in parsed(site / page).targets:
            url = urlparse(target)
            if url.scheme in ("http", "https") or target.startswith("//"):
                if tag in ("script", "img", "link", "iframe", "source"):
                    external.append(f"{page}: <{tag}> {target}")
                continue
            if url.scheme in ("mailto", "data", "javascript"):
                continue
            path, fragment = urldefrag(urljoin(page, target))
            path = unquote(path.split("?")[0]) or page
            file = site / path
            if file.is_dir():
                file = file / "index.html"
            if not file.exists():
                broken.append(f"{page}: {target}")
            elif fragment and file.suffix == ".html" and fragment not in parsed(file).ids:
                broken.append(f"{page}: {target} (no id {fragment!r})")
    assert not external, "loaded from the network:\n" + "\n".join(external)
    assert not broken, f"{len(broken)} broken links:\n" + "\n".join(broken[:30])


def test_every_page_renders_in_the_browser(site, server, browser):
    failures = []
    for page in pages(site):
        browser.get(server + page)
        WebDriverWait(browser, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete")
        if browser.find_elements(By.CSS_SELECTOR, "div.math, span.math"):
            typeset = browser.execute_async_script(  # MathJax 3 typesets after load
                "const done = arguments[arguments.length - 1];"
                "if (!window.MathJax || !MathJax.startup) { done('MathJax did not load'); }"
                "else { MathJax.startup.promise.then(() => done('ok'), e => done(String(e))); }")
            raw = browser.execute_script(
                "return Array.from(document.querySelectorAll('span.math, div.math'))"
                ".filter(e => !e.querySelector('mjx-container')).length")
            if typeset != "ok" or raw:
                failures.append(f"{page}: maths not typeset ({typeset}; {raw} left as TeX)")
        broken_images = browser.execute_script(
            "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
            ".map(i => i.src)")
        failures += [f"{page}: image did not load: {src}" for src in broken_images]
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        failures += [f"{page}: console error: {message}" for message in errors]
        if page == SCREENSHOT_PAGE:
            shots = site / "_screenshots"
            shots.mkdir(exist_ok=True)
            browser.save_screenshot(str(shots / Path(page).with_suffix(".png").name))
    assert not failures, "\n".join(failures)


def test_search_finds_a_chapter_by_its_term(server, browser):
    term, chapter = SEARCH
    browser.get(f"{server}search.html?q={term}")
    WebDriverWait(browser, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results ul.search li"))
    hits = [a.get_attribute("href")
            for a in browser.find_elements(By.CSS_SELECTOR, "#search-results ul.search li a")]
    assert any(h.split("#")[0].endswith(chapter) for h in hits), (
        f"searching {term!r} did not list {chapter}: {hits[:10]}")


def test_exercises_as_the_edition_shows_them(site, edition):
    text = (site / "chapters" / "01_backprop.html").read_text(encoding="utf-8")
    assert "BEGIN HIDDEN TESTS" not in text and "ex_loss" not in text, "hidden tests on the page"
    assert "Exercise 1" in text, "the exercise prompts are missing"
    if edition == "learner":
        assert "Show solution" in text and "BEGIN SOLUTION" in text, (
            "solutions should be on the page, collapsed behind a toggle")
    else:
        assert "BEGIN SOLUTION" not in text and "YOUR CODE HERE" in text, (
            "the student edition must hold nbgrader's stubs, not the solutions")
