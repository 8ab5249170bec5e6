"""The course website (docs/conf.py): built offline, warnings as errors, and checked page by page.

One build per test session (``tools/build_site.py``'s ``build_once``, shared with
``tests/browser/test_site_browser.py``), from a copy of ``docs/`` in pytest's temporary folder. It checks
that every lesson has its page with its images, that the API reference lists every name of every
public module's ``__all__``, that no internal link or anchor is broken, that the search index
knows ``quantize``, that the launch links come from the one configured repository and hub, and
that a broken cross-reference fails the build. Skipped, with the reason, without the ``docs``
extra (sphinx, myst-nb, sphinx-book-theme).
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import pkgutil
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "lessons").glob("*.ipynb"))
BUILD_LIMIT_S = 180  # CI has 2 cores; the build takes ~20-30 s there


def _missing_docs_extra() -> str | None:
    for module in ("sphinx", "myst_nb", "sphinx_book_theme"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (the docs extra: pip install -e \".[docs]\")"
    return None


pytestmark = pytest.mark.skipif(_missing_docs_extra() is not None, reason=str(_missing_docs_extra()))


def build_site_module():
    """tools/build_site.py, imported once per process (its build cache is shared with the browser test)."""
    if "compresslab_build_site" not in sys.modules:
        spec = importlib.util.spec_from_file_location("compresslab_build_site", REPO / "tools" / "build_site.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["compresslab_build_site"]


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The site, built once per session (the browser test reuses it)."""
    bs = build_site_module()
    built = bs.build_once(tmp_path_factory.getbasetemp() / "course-site", env=bs.TEST_ENV)
    assert built.returncode == 0, f"sphinx-build failed (exit {built.returncode}):\n{built.log[-6000:]}"
    return built


# ---- HTML parsing ------------------------------------------------------------------------------
class Page(HTMLParser):
    """Ids, links (href/src) and images of one HTML page."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str, dict]] = []  # (tag, url, attributes)
        self.images: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key) and (key == "id" or tag == "a"):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) is not None and tag in ("a", "link", "script", "img", "iframe"):
                self.links.append((tag, attrs[key], attrs))
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])


_PAGES: dict[Path, Page] = {}


def page(path: Path) -> Page:
    if path not in _PAGES:
        _PAGES[path] = Page(path.read_text(encoding="utf-8"))
    return _PAGES[path]


def public_modules() -> list[str]:
    """compresslab's submodules with an ``__all__`` and their own such submodules (the API)."""
    import compresslab

    names = []
    for sub in compresslab._SUBMODULES:
        mod = importlib.import_module(f"compresslab.{sub}")
        if hasattr(mod, "__all__"):
            names.append(mod.__name__)
            for info in pkgutil.iter_modules(getattr(mod, "__path__", [])):
                if not info.name.startswith("_"):
                    child = importlib.import_module(f"{mod.__name__}.{info.name}")
                    if hasattr(child, "__all__"):
                        names.append(child.__name__)
    return names


def built_copy(site, nb: Path) -> Path:
    """The lesson as the build read it (docs/conf.py's copy: lessons may change while tests run)."""
    return site.html.parent / "docs" / "lessons" / nb.name


def stored_images(nb_path: Path) -> int:
    """Image outputs stored in a lesson (what its page must show)."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    return sum(1 for cell in nb["cells"] for out in cell.get("outputs", [])
               if any(k.startswith("image/") for k in out.get("data", {})))


# ---- the build ---------------------------------------------------------------------------------
def test_build_is_clean_and_fast(site):
    warnings = [line for line in site.log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert not warnings, "\n".join(warnings[:20])
    print(f"site built in {site.seconds:.1f} s")
    assert site.seconds < BUILD_LIMIT_S


def test_every_lesson_has_a_page_with_its_images(site):
    assert LESSONS, "no lessons found"
    for nb in LESSONS:
        html = site.html / "lessons" / f"{nb.stem}.html"
        assert html.is_file(), f"no page for {nb.name}"
        p = page(html)
        images = [src for src in p.images if "_images/" in src]
        assert len(images) == stored_images(built_copy(site, nb)), (nb.name, images)
        for src in images:
            target = (html.parent / unquote(src)).resolve()
            assert target.is_file() and target.stat().st_size > 100, f"{nb.name}: image {src} missing or empty"
        text = html.read_text(encoding="utf-8")
        assert "widget-view+json" not in text and "@jupyter-widgets" not in text, f"{nb.name}: widget left in page"
    # The index's table of contents has every lesson (found by glob: a new lesson needs no edit).
    index_links = {urlsplit(url).path for _, url, _ in page(site.html / "index.html").links}
    assert {f"lessons/{nb.stem}.html" for nb in LESSONS} <= index_links


def test_widgets_become_a_static_note(site):
    """Every interactive widget output is a note on the page; tqdm's progress bars are dropped."""
    total = 0
    for nb in LESSONS:
        copy = built_copy(site, nb)
        text = copy.read_text(encoding="utf-8")
        assert "widget-view+json" not in text and "widget-state+json" not in text, nb.name
        outputs = [out for cell in json.loads(text)["cells"] for out in cell.get("outputs", [])]
        notes = sum('class="cl-widget-note"' in "".join(out.get("data", {}).get("text/html", "")) for out in outputs)
        page_text = (site.html / "lessons" / f"{nb.stem}.html").read_text(encoding="utf-8")
        assert page_text.count('class="cl-widget-note"') == notes, nb.name
        total += notes
    assert total >= len(LESSONS) // 2  # most lessons have a widget


def test_the_site_shows_the_student_edition(site):
    """A public site shows no solutions (COMPRESSLAB_SITE_EDITION=instructor would)."""
    with_solutions = [nb for nb in LESSONS if "BEGIN SOLUTION" in nb.read_text(encoding="utf-8")]
    assert with_solutions
    for nb in LESSONS:
        text = (site.html / "lessons" / f"{nb.stem}.html").read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, nb.name
        if nb in with_solutions:
            assert "NotImplementedError" in text or "YOUR ANSWER HERE" in text, nb.name


def test_pages_from_readme_and_docs(site):
    index = (site.html / "index.html").read_text(encoding="utf-8")
    assert "Learn neural-network compression and acceleration by doing it" in index
    assert "Quick start" in index
    for name, title in (("teaching", "Teaching with compresslab"), ("deploy", "Deploying compresslab"),
                        ("maintainers", "")):
        html = site.html / f"{name}.html"
        assert html.is_file(), name
        assert title in html.read_text(encoding="utf-8")
    # README's links to docs/teaching.md and lessons/*.ipynb became links between site pages.
    hrefs = {urlsplit(url).path for _, url, _ in page(site.html / "index.html").links}
    assert {"teaching.html", "deploy.html", "maintainers.html", "lessons/00_tour.html"} <= hrefs


# ---- API reference -----------------------------------------------------------------------------
def test_api_lists_every_public_name(site):
    modules = public_modules()
    assert {"compresslab.prune", "compresslab.quant", "compresslab.quant.gptq", "compresslab.quant.awq",
            "compresslab.quant.smoothquant", "compresslab.quant.gguf", "compresslab.quant.llm",
            "compresslab.quant.groups", "compresslab.distill", "compresslab.encode", "compresslab.lowrank",
            "compresslab.nn", "compresslab.nn.layers", "compresslab.nn.gpt", "compresslab.speed",
            "compresslab.speed.lm", "compresslab.data", "compresslab.report", "compresslab.exercises"} <= set(modules)
    api_index = {urlsplit(url).path for _, url, _ in page(site.html / "api" / "index.html").links}
    missing = []
    for module in modules:
        html = site.html / "api" / f"{module}.html"
        assert html.is_file(), f"no API page for {module}"
        assert f"{module}.html" in api_index, f"{module} not in the API index"
        p = page(html)
        links = {urlsplit(url).fragment for _, url, _ in p.links}
        parent = module.rpartition(".")[0]
        mod = importlib.import_module(module)
        for name in mod.__all__:
            if f"{module}.{name}" in p.ids:
                continue  # documented on this page
            # or re-exported by its package, documented there and linked from here
            parent_page = site.html / "api" / f"{parent}.html"
            if f"{parent}.{name}" in links and parent_page.is_file() and f"{parent}.{name}" in page(parent_page).ids:
                continue
            missing.append(f"{module}.{name}")
    assert not missing, f"{len(missing)} public names not in the API reference: {missing[:20]}"


def test_api_entries_are_rendered_from_numpydoc(site):
    text = (site.html / "api" / "compresslab.quant.html").read_text(encoding="utf-8")
    entry = text[text.index('id="compresslab.quant.quantize"'):]
    entry = entry[:entry.index('class="sig sig-object py"', 10)]
    for part in ("Parameters", "Returns", "Examples", "qp"):
        assert part in entry, part
    assert '<p class="rubric">Notes</p>' in text or "Notes" in entry


def test_lessons_link_to_the_api(site):
    """`Q.quantize` in lesson 02a (after ``from compresslab import quant as Q``) links to its entry."""
    hrefs = {url for _, url, _ in page(site.html / "lessons" / "02a_quantization.html").links}
    assert "../api/compresslab.quant.html#compresslab.quant.quantize" in hrefs
    total = 0
    for nb in LESSONS:
        text = (site.html / "lessons" / f"{nb.stem}.html").read_text(encoding="utf-8")
        total += text.count("cl-api-link")
    assert total >= 5 * len(LESSONS) // 2


# ---- links, search, launch ---------------------------------------------------------------------
def test_no_internal_link_is_broken(site):
    # _static/ holds the theme's template snippets (copied as they are), not pages
    pages = sorted(p for p in site.html.rglob("*.html") if "_static" not in p.relative_to(site.html).parts)
    assert len(pages) > 40
    broken, checked = [], 0
    for html in pages:
        for _, url, _ in page(html).links:
            parts = urlsplit(url)
            if parts.scheme or url.startswith(("//", "mailto:", "javascript:", "data:")) or url == "":
                continue
            target = (html.parent / unquote(parts.path)).resolve() if parts.path else html
            checked += 1
            if not target.exists():
                broken.append(f"{html.relative_to(site.html)}: {url}")
                continue
            if target.is_dir():
                target = target / "index.html"
            if parts.fragment and target.suffix == ".html" and parts.fragment not in page(target).ids:
                broken.append(f"{html.relative_to(site.html)}: {url} (no #{parts.fragment})")
    assert checked > 1000
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:30])


def test_search_index_knows_quantize(site):
    text = (site.html / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1:text.rindex(")")])
    assert "quantiz" in index["terms"] or "quantize" in index["terms"]
    objects = json.dumps(index["objects"])
    assert '"quantize"' in objects
    assert (site.html / "search.html").is_file()


def test_launch_links_come_from_the_one_configured_place(site):
    bs = build_site_module()
    repo, branch = bs.TEST_ENV["COMPRESSLAB_REPO_URL"], bs.TEST_ENV["COMPRESSLAB_REPO_BRANCH"]
    hub = bs.TEST_ENV["COMPRESSLAB_JUPYTERHUB_URL"]
    org_repo = urlsplit(repo).path.strip("/")
    for nb in LESSONS:
        urls = [url for _, url, _ in page(site.html / "lessons" / f"{nb.stem}.html").links]
        binder = [u for u in urls if u.startswith("https://mybinder.org/")]
        assert binder == [f"https://mybinder.org/v2/gh/{org_repo}/{branch}?urlpath=lab/tree/lessons/{nb.name}"], binder
        pulls = [u for u in urls if u.startswith(f"{hub}/hub/user-redirect/git-pull?")]
        assert len(pulls) == 1, (nb.name, pulls)
        query = parse_qs(urlsplit(pulls[0]).query)
        assert query == {"repo": [repo], "branch": [branch],
                         "urlpath": [f"lab/tree/{org_repo.rpartition('/')[2]}/lessons/{nb.name}"]}
    # No link on any page goes to the default repository: the site's links come from the settings.
    for html in site.html.rglob("*.html"):
        for _, url, _ in page(html).links:
            assert "github.com/compresslab/compresslab" not in url and "gh/compresslab/compresslab" not in url, (
                html, url)


def test_readme_badge_and_site_name_the_same_repository():
    """The README's Binder badge (GitHub shows a literal URL) and conf.py's default agree."""
    conf = ast.parse((REPO / "docs" / "conf.py").read_text(encoding="utf-8"))
    default = next(node.value.value for node in conf.body if isinstance(node, ast.Assign)
                   and getattr(node.targets[0], "id", "") == "DEFAULT_REPO_URL")
    badge = re.search(r"https://mybinder\.org/v2/gh/([^/]+/[^/]+)/", (REPO / "README.md").read_text(encoding="utf-8"))
    assert badge, "README has no Binder badge"
    assert default == f"https://github.com/{badge.group(1)}"


# ---- a broken reference fails the build --------------------------------------------------------
BROKEN_PAGE = """# Broken references

A reference that resolves: {py:func}`compresslab.quant.quantize`, and `cl.quant.quantize` as text.

A reference to nothing: {py:func}`compresslab.quant.no_such_function`.

A link to no page: [nowhere](no_such_page.md).

```{toctree}
:hidden:

api/compresslab.quant
```
"""

OVERRIDE = """
exec(compile(open({conf!r}, encoding="utf-8").read(), {conf!r}, "exec"))
root_doc = "broken"
include_patterns = ["broken.md", "api/compresslab.quant.md"]
html_static_path = []
html_css_files = []
"""


def test_a_broken_reference_fails_the_build(tmp_path):
    """The real conf.py (nitpicky, -W) on one page: only its two broken references warn, and fail."""
    bs = build_site_module()
    src = tmp_path / "docs"
    src.mkdir()
    shutil.copy2(REPO / "docs" / "conf.py", tmp_path / "real_conf.py")
    (src / "conf.py").write_text(OVERRIDE.format(conf=str(tmp_path / "real_conf.py")), encoding="utf-8")
    (src / "api").mkdir()
    (src / "broken.md").write_text(BROKEN_PAGE, encoding="utf-8")
    built = bs.build(src, tmp_path / "html")
    warnings = [line for line in built.log.splitlines() if "WARNING" in line]
    assert built.returncode != 0, built.log
    assert len(warnings) == 2, built.log
    assert any("compresslab.quant.no_such_function" in w for w in warnings), warnings
    assert any("no_such_page" in w for w in warnings), warnings
    # --keep-going still wrote the page: the good reference and the inline code are links.
    hrefs = {url for _, url, _ in Page((tmp_path / "html" / "broken.html").read_text(encoding="utf-8")).links}
    assert "api/compresslab.quant.html#compresslab.quant.quantize" in hrefs
