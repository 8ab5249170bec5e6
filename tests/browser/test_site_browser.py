"""The course website in a real browser (headless Chromium through Playwright).

The site ``tests/test_site.py`` builds (one build per session, shared), served over HTTP on
127.0.0.1: the course page shows with every lesson in its navigation, each lesson page's images
load (non-zero natural size) and it offers the launch menu, the API reference lists functions,
the teaching guide opens, and the search page finds ``quantize``. A screenshot of each page is
saved (``COMPRESSLAB_SCREENSHOTS``, see conftest.py).

Run just these: ``pytest tests/browser/test_site_browser.py -o addopts=""`` (about half a minute).
"""
from __future__ import annotations

import functools
import http.server
import importlib.util
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest


def _site_checks():
    """tests/test_site.py (its build, shared through tools/build_site.py, and its helpers)."""
    name = "compresslab_test_site_checks"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "test_site.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


_checks = _site_checks()
LESSONS, stored_images, build_site_module = _checks.LESSONS, _checks.stored_images, _checks.build_site_module
built_copy = _checks.built_copy
_missing_docs_extra = _checks._missing_docs_extra

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(_missing_docs_extra() is not None, reason=str(_missing_docs_extra()))]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    bs = build_site_module()
    built = bs.build_once(tmp_path_factory.getbasetemp() / "course-site", env=bs.TEST_ENV)
    assert built.returncode == 0, built.log[-4000:]
    return built


@pytest.fixture(scope="module")
def site_url(built_site):
    """The built site over HTTP on 127.0.0.1 (a free port), for this module."""
    built = built_site
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Quiet, directory=str(built.html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def local_mathjax(built_site) -> bool:
    """Whether the site carries its own MathJax (the docs extra's jupyter-server-mathjax)."""
    return (built_site.html / "_static" / "mathjax" / "MathJax.js").is_file()


@pytest.fixture(scope="module")
def tab(browser, local_mathjax):
    """One tab; ``cl_errors`` collects script errors and failed requests.

    The test machine has no network, and the site needs none: every request goes to 127.0.0.1.
    The one exception, when the site has no MathJax of its own, is MathJax's script from its CDN
    (without it the lessons' maths shows as TeX source).
    """
    page = browser.new_page()
    errors: list[str] = []

    def failed(req):
        if urlsplit(req.url).scheme not in ("http", "https"):
            return  # about:blank (MathJax's font-measuring frame), data: URLs
        if urlsplit(req.url).hostname == "127.0.0.1":
            errors.append(f"request failed: {req.url}")
        elif local_mathjax or not ("mathjax" in req.url.lower() and req.resource_type == "script"):
            errors.append(f"request outside the site: {req.url}")

    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", failed)
    page.cl_errors = errors
    yield page
    page.close()


def _visit(tab, url: str) -> None:
    tab.cl_errors.clear()
    response = tab.goto(url, wait_until="load")
    assert response is not None and response.ok, url
    tab.wait_for_load_state("networkidle")


IMAGES = """() => [...document.querySelectorAll('article img, .bd-article img')]
  .filter(img => img.getAttribute('src').includes('_images/'))
  .map(img => ({src: img.getAttribute('src'), complete: img.complete, w: img.naturalWidth, h: img.naturalHeight}))"""


def test_course_page(tab, site_url, screenshot_dir: Path):
    _visit(tab, f"{site_url}/index.html")
    assert tab.locator("article h1").first.inner_text().strip().startswith("compresslab")
    assert tab.get_by_text("Learn neural-network compression and acceleration by doing it").first.is_visible()
    nav = tab.locator("nav.bd-docs-nav a[href*='lessons/']")
    hrefs = {nav.nth(i).get_attribute("href") for i in range(nav.count())}
    assert {f"lessons/{nb.stem}.html" for nb in LESSONS} <= hrefs
    tab.screenshot(path=str(screenshot_dir / "site_index.png"))
    assert not tab.cl_errors, tab.cl_errors


@pytest.mark.parametrize("nb", LESSONS, ids=[nb.stem for nb in LESSONS])
def test_lesson_page_images_load(tab, site_url, built_site, screenshot_dir: Path, nb: Path):
    _visit(tab, f"{site_url}/lessons/{nb.stem}.html")
    assert tab.locator("article h1").count() >= 1
    images = tab.evaluate(IMAGES)
    for img in images:  # scroll each into view: nothing is left to lazy loading
        tab.locator(f"img[src='{img['src']}']").first.scroll_into_view_if_needed()
    tab.wait_for_function(f"() => ({IMAGES})().every(i => i.complete)", timeout=15_000)
    images = tab.evaluate(IMAGES)
    assert len(images) == stored_images(built_copy(built_site, nb)), images
    bad = [img for img in images if not (img["w"] > 0 and img["h"] > 0)]
    assert not bad, f"{nb.name}: images that did not load: {bad}"
    # The launch menu (Binder, JupyterHub) is in the page header.
    launch = tab.locator(".dropdown-launch-buttons a[href*='mybinder.org']")
    assert launch.count() == 1 and nb.name in launch.first.get_attribute("href")
    if images:  # one screenshot at the first plot, one at the top of the page
        tab.locator(f"img[src='{images[0]['src']}']").first.scroll_into_view_if_needed()
        tab.screenshot(path=str(screenshot_dir / f"site_{nb.stem}_plot.png"))
    notes = tab.locator(".cl-widget-note")
    if notes.count():  # where a widget was: the static note, visible
        notes.first.scroll_into_view_if_needed()
        assert notes.first.is_visible() and "JupyterLab" in notes.first.inner_text()
        tab.screenshot(path=str(screenshot_dir / f"site_{nb.stem}_widget.png"))
    tab.evaluate("window.scrollTo(0, 0)")
    tab.locator(".dropdown-launch-buttons button").first.click()  # the launch menu opens
    tab.locator(".dropdown-launch-buttons a[href*='mybinder.org']").first.wait_for(state="visible")
    tab.screenshot(path=str(screenshot_dir / f"site_{nb.stem}.png"))
    assert not tab.cl_errors, tab.cl_errors


def test_lesson_maths_is_typeset_offline(tab, site_url, local_mathjax, screenshot_dir: Path):
    if not local_mathjax:
        pytest.skip("the site has no MathJax of its own (install the docs extra: jupyter-server-mathjax)")
    _visit(tab, f"{site_url}/lessons/02a_quantization.html")
    tab.wait_for_function("() => document.querySelectorAll('span.MathJax, span.MathJax_CHTML').length > 5",
                          timeout=30_000)
    raw = tab.evaluate("() => [...document.querySelectorAll('span.math')]"
                       ".filter(s => s.innerText.includes('\\\\(')).length")
    assert raw == 0, f"{raw} formulas left as TeX"
    tab.locator("span.MathJax").first.scroll_into_view_if_needed()
    tab.screenshot(path=str(screenshot_dir / "site_maths.png"))
    assert not tab.cl_errors, tab.cl_errors


def test_api_reference_lists_functions(tab, site_url, screenshot_dir: Path):
    _visit(tab, f"{site_url}/api/compresslab.quant.html")
    functions = tab.locator("dl.py.function > dt.sig")
    assert functions.count() > 30
    entry = tab.locator("[id='compresslab.quant.quantize']")
    entry.scroll_into_view_if_needed()
    assert entry.is_visible() and "quantize" in entry.inner_text()
    tab.screenshot(path=str(screenshot_dir / "site_api_quant.png"))
    _visit(tab, f"{site_url}/api/index.html")
    modules = tab.locator("article a[href^='compresslab.']")
    assert modules.count() >= 19
    assert not tab.cl_errors, tab.cl_errors


def test_teaching_guide_opens(tab, site_url, screenshot_dir: Path):
    _visit(tab, f"{site_url}/index.html")
    tab.locator("nav.bd-docs-nav a[href='teaching.html']").first.click()
    tab.wait_for_url("**/teaching.html")
    assert "Teaching with compresslab" in tab.locator("article h1").first.inner_text()
    tab.screenshot(path=str(screenshot_dir / "site_teaching.png"))
    assert not tab.cl_errors, tab.cl_errors


def test_search_finds_quantize(tab, site_url, screenshot_dir: Path):
    _visit(tab, f"{site_url}/search.html?q=quantize")
    results = tab.locator("#search-results ul.search li")
    results.first.wait_for(timeout=20_000)
    texts = [results.nth(i).inner_text() for i in range(min(results.count(), 20))]
    assert any("quantize" in t.lower() for t in texts), texts
    links = tab.locator("#search-results ul.search li a")
    assert any("compresslab.quant.html" in (links.nth(i).get_attribute("href") or "")
               for i in range(links.count()))
    tab.screenshot(path=str(screenshot_dir / "site_search.png"))
    assert not tab.cl_errors, tab.cl_errors
