"""Every lesson, run in JupyterLab in a real browser (headless Chromium through Playwright).

For each notebook in ``lessons/`` (a new lesson is picked up without editing this file):
open it in JupyterLab, run all cells from the Run menu, wait for the kernel to finish, check
that no cell shows an error, that every widget renders (not "Error displaying widget"), that
every plot image loads, and that moving each slider changes what the widget shows (its text or
its images) without an error in the kernel. One screenshot per lesson is saved.

Run just these: ``pytest tests/browser -m browser -o addopts=""`` (about a minute per lesson).
"""
from __future__ import annotations

import re
import time

import pytest
from jlab import WIDGETS_EXTENSION, lesson_paths, lessons_folder

pytestmark = pytest.mark.browser

RUN_TIMEOUT = 240  # s for a whole lesson; each is meant to take < 60 s on 2 cores
REACT_TIMEOUT = 15  # s for a widget to redraw after a control moves
# IPython prints "ZeroDivisionError   Traceback (most recent call last)"; warnings on stderr do not.
TRACEBACK = re.compile(r"Traceback \(most recent call last\)")

# ---- JavaScript run in the page (window.jupyterapp is exposed by --LabApp.expose_app_in_browser)
NOTEBOOK = """(path) => { const app = window.jupyterapp; if (!app) return null;
  const w = app.shell.currentWidget;
  return (w && w.context && w.context.path === path && w.content && w.sessionContext) ? w : null; }"""

READY = f"""(path) => {{ const w = ({NOTEBOOK})(path);
  return !!(w && w.context.isReady && w.sessionContext.isReady && w.sessionContext.session
            && w.sessionContext.session.kernel && w.sessionContext.kernelDisplayStatus === 'idle'); }}"""

STATE = f"""(path) => {{ const w = ({NOTEBOOK})(path);
  const out = {{status: w.sessionContext.kernelDisplayStatus, code: 0, pending: [], running: 0, errors: []}};
  w.content.widgets.forEach((cell, i) => {{
    if (cell.model.type !== 'code') return;
    const src = cell.model.sharedModel.getSource();
    if (!src.trim()) return;  // JupyterLab does not send empty cells to the kernel
    out.code++;
    if (cell.model.executionCount == null) out.pending.push(i);
    const prompt = cell.node.querySelector('.jp-InputArea-prompt');
    if (prompt && prompt.textContent.includes('*')) out.running++;
    const tags = cell.model.getMetadata('tags') || [];
    if (tags.includes('raises-exception')) return;  // an error shown on purpose (nbval's tag too)
    for (const o of cell.model.outputs.toJSON())
      if (o.output_type === 'error')
        out.errors.push({{cell: i, source: src.slice(0, 300), ename: o.ename, evalue: o.evalue,
                         traceback: (o.traceback || []).join('\\n').replace(/\\x1b\\[[0-9;]*m/g, '').slice(-3000)}});
  }});
  return out; }}"""

# Listen to the kernel for errors outside cell execution (those are checked on the cells):
# above all the errors of widget callbacks, which JupyterLab only puts in its log console.
LISTEN = f"""(path) => {{ const w = ({NOTEBOOK})(path); window.__clKernelErrors = [];
  w.sessionContext.session.kernel.iopubMessage.connect((_, msg) => {{
    const t = msg.header.msg_type, c = msg.content, parent = (msg.parent_header || {{}}).msg_type || '?';
    if (parent === 'execute_request') return;
    if (t === 'error')
      window.__clKernelErrors.push(`${{c.ename}}: ${{c.evalue}} (in reply to ${{parent}})`);
    else if (t === 'stream' && c.name === 'stderr' && /Traceback \\(most recent call last\\)/.test(c.text))
      window.__clKernelErrors.push(`traceback on stderr (in reply to ${{parent}}): ${{c.text.slice(-800)}}`);
  }});
  return true; }}"""
KERNEL_ERRORS = "() => window.__clKernelErrors || []"

# Everything the notebook shows: error-looking text, widget views, widget failures, images.
DOM = f"""(path) => {{ const w = ({NOTEBOOK})(path); const res = {{cells: []}};
  w.content.widgets.forEach((cell, i) => {{
    cell.node.setAttribute('data-cl-cell', String(i));
    if (cell.model.type !== 'code') return;
    const outputs = cell.model.outputs.toJSON();
    const views = outputs.filter(o => o.data && o.data['application/vnd.jupyter.widget-view+json']).length;
    const pngs = outputs.filter(o => o.data && (o.data['image/png'] || o.data['image/svg+xml'])).length;
    const area = cell.node.querySelector('.jp-OutputArea');
    const text = area ? area.innerText : '';
    const stderr = area ? [...area.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')]
                           .map(n => n.innerText) : [];
    const nodes = area ? [...area.querySelectorAll(':scope > .jp-OutputArea-child > .jp-OutputArea-output')] : [];
    const roots = nodes.filter(n => n.querySelector(':scope > .jupyter-widgets'));
    // a closed widget (e.g. a finished tqdm bar with leave=False) leaves an empty output behind
    const closed = nodes.filter(n => n.childElementCount === 0 && !n.textContent.trim());
    const imgs = area ? [...area.querySelectorAll('.jp-RenderedImage img, img.widget-image')] : [];
    res.cells.push({{index: i, views, pngs, widgetRoots: roots.length, closed: closed.length,
      widgetErrorText: /Error displaying widget|Error rendering|model not found/.test(text),
      loading: /Loading widget\\.\\.\\./.test(text),
      plainWidgetRepr: /^(VBox|HBox|IntSlider|FloatSlider|Dropdown|Tab|Accordion|Output)\\(/m.test(text),
      stderr, imgs: imgs.map(im => ({{src: im.src.slice(0, 40), ok: im.complete && im.naturalWidth > 0}}))}});
  }});
  return res; }}"""

# What a widget view shows, without its sliders' own readouts (those change by themselves).
SNAPSHOT = """(root) => { const c = root.cloneNode(true);
  c.querySelectorAll('.widget-slider, .widget-readout').forEach(n => n.remove());
  const imgs = [...root.querySelectorAll('img')].map(i => i.src);
  const canvases = [...root.querySelectorAll('canvas')].map(cv => {
    try { return cv.toDataURL(); } catch (e) { return ''; } });
  return c.textContent + '\\n' + imgs.join('\\n') + '\\n' + canvases.join('\\n'); }"""


def test_lessons_found():
    assert lesson_paths(), f"no lesson notebooks in {lessons_folder()}"


def test_widgets_extension_is_served(jupyter):
    """ipywidgets can only render in JupyterLab 4 with jupyterlab_widgets 3's extension."""
    names = [e.get("name") for e in jupyter.page_config().get("federated_extensions", [])]
    assert WIDGETS_EXTENSION in names, (
        f"JupyterLab does not load the ipywidgets extension (found {names}); install "
        "jupyterlab_widgets>=3,<4 next to ipywidgets>=8,<9")


@pytest.fixture
def lesson_page(browser, jupyter):
    """A new tab; afterwards the tab is closed and every kernel shut down, also when the test fails."""
    page = browser.new_page()
    page.js_errors = []
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))
    try:
        yield page
    finally:
        try:
            jupyter.shutdown_sessions()  # remembers the kernel's pid first
        finally:
            page.close()


def _open(page, jupyter, name: str, workspace: str):
    page.goto(jupyter.url(f"/lab/workspaces/{workspace}/tree/{name}"), wait_until="domcontentloaded")
    page.wait_for_function(READY, arg=name, timeout=120_000, polling=250)
    page.evaluate(LISTEN, name)


def _run_all(page):
    """Run ▸ Run All Cells, as a learner does (the same JupyterLab command if the menu moved)."""
    try:
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click(timeout=10_000)
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).first.click(timeout=5_000)
    except Exception:  # playwright's TimeoutError: fall back on the command behind the menu item
        page.keyboard.press("Escape")
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def _wait_until_done(page, name: str, timeout: float) -> dict:
    """Wait until every code cell has run (or one failed) and the kernel is idle."""
    deadline, quiet_since, st = time.monotonic() + timeout, None, None
    while time.monotonic() < deadline:
        st = page.evaluate(STATE, name)
        settled = st["status"] == "idle" and st["running"] == 0
        if settled and (not st["pending"] or st["errors"]):
            return st
        if settled:  # idle with cells never run: JupyterLab gave up; give it a moment to be sure
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 10:
                return st
        else:
            quiet_since = None
        page.wait_for_timeout(500)
    pytest.fail(f"{name}: not finished after {timeout:.0f} s: kernel {st and st['status']}, "
                f"{st and len(st['pending'])} cells not run yet")


def _wait_idle(page, name: str, timeout: float = 60):
    page.wait_for_function(f"(p) => ({NOTEBOOK})(p).sessionContext.kernelDisplayStatus === 'idle'",
                           arg=name, timeout=timeout * 1000, polling=200)


def _changed(page, root, before: str, name: str, timeout: float = REACT_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.wait_for_timeout(250)
        if root.evaluate(SNAPSHOT) != before:
            _wait_idle(page, name)
            page.wait_for_timeout(300)  # let the last redraw land
            return True
    return False


def _move_slider(page, root, slider, name: str) -> tuple[bool, str]:
    """Move a slider with the keyboard (one step, then to the far end); did the view change?"""
    handle = slider.locator(".noUi-handle").first
    if handle.count() == 0:
        return False, "slider without a handle"
    handle.scroll_into_view_if_needed()
    now, top = (float(handle.get_attribute(a) or 0) for a in ("aria-valuenow", "aria-valuemax"))
    step, far = ("ArrowLeft", "Home") if now >= top else ("ArrowRight", "End")
    for key in (step, far):
        before = root.evaluate(SNAPSHOT)
        handle.focus()
        page.keyboard.press(key)
        if _changed(page, root, before, name):
            return True, f"{key} -> {handle.get_attribute('aria-valuetext')}"
    return False, f"neither {step} nor {far} changed the view"


# The parameter is the lesson's path, so that the root conftest.py sees which optional packages the
# lesson declares (and skips it, or marks it, from that one place).
@pytest.mark.parametrize("path", lesson_paths(), ids=lambda p: p.stem)
def test_lesson_runs_and_its_widgets_respond(path, lesson_page, jupyter, screenshot_dir):
    page, lesson, name = lesson_page, path.stem, path.name
    t0 = time.monotonic()
    _open(page, jupyter, name, workspace=f"test-{lesson}")
    _run_all(page)
    st = _wait_until_done(page, name, RUN_TIMEOUT)
    jupyter.remember_processes()
    ran = time.monotonic() - t0
    print(f"{name}: opened and ran in {ran:.0f} s")

    # 1. No cell shows an error, and every cell ran.
    for e in st["errors"]:
        pytest.fail(f"{name}: cell {e['cell']} raised {e['ename']}: {e['evalue']}\n--- cell ---\n"
                    f"{e['source']}\n--- traceback ---\n{e['traceback']}")
    assert not st["pending"], f"{name}: cells {st['pending']} never ran"

    # 2. Widgets render, plots load, nothing error-like on screen.
    for _ in range(60):  # widgets shown by the last cells may still be loading
        dom = page.evaluate(DOM, name)
        if not any(c["loading"] for c in dom["cells"]):
            break
        page.wait_for_timeout(500)
    widget_cells = [c for c in dom["cells"] if c["views"]]
    for c in dom["cells"]:
        where = f"{name}, cell {c['index']}"
        assert not c["widgetErrorText"], f"{where}: a widget failed to display (JS errors: {page.js_errors})"
        assert not c["loading"], f"{where}: a widget is still 'Loading widget...' after 30 s"
        assert not c["plainWidgetRepr"], f"{where}: a widget shows as text (is the ipywidgets extension loaded?)"
        assert c["widgetRoots"] + c["closed"] >= c["views"], \
            f"{where}: {c['views']} widget outputs, {c['widgetRoots']} rendered, {c['closed']} closed"
        assert not [s for s in c["stderr"] if TRACEBACK.search(s)], f"{where}: traceback on screen: {c['stderr']}"
        assert all(im["ok"] for im in c["imgs"]), f"{where}: an image did not load: {c['imgs']}"
        assert len(c["imgs"]) >= c["pngs"], f"{where}: {c['pngs']} plots in the notebook, {len(c['imgs'])} shown"

    # 3. Each widget responds: every visible slider must change the view; dropdowns are tried too.
    report, controls, reacted, first_root = [], 0, 0, None
    for c in widget_cells:
        roots = page.locator(f'[data-cl-cell="{c["index"]}"] .jp-Cell-outputArea > .jp-OutputArea-child'
                             " > .jp-OutputArea-output:has(> .jupyter-widgets)")
        for r in range(roots.count()):
            root = roots.nth(r)
            root.scroll_into_view_if_needed()
            box = root.bounding_box()
            assert box and box["width"] > 20 and box["height"] > 10, f"{name}, cell {c['index']}: widget has no size"
            sliders = root.locator(".widget-slider")
            dropdowns = root.locator(".widget-dropdown select")
            if sliders.count() + dropdowns.count() and first_root is None:
                first_root = root
            for k in range(sliders.count()):
                slider = sliders.nth(k)
                if not slider.is_visible():
                    continue
                label = slider.locator(".widget-label").first.inner_text().strip() or f"slider {k}"
                ok, how = _move_slider(page, root, slider, name)
                controls, reacted = controls + 1, reacted + ok
                report.append(f"cell {c['index']} slider '{label}': {how}")
                assert ok, (f"{name}, cell {c['index']}: moving the slider '{label}' did not change the view "
                            f"({how}); errors from the kernel: {page.evaluate(KERNEL_ERRORS)}")
            # Dropdowns: pick another option. The view should react, but that is reported, not
            # required (a dropdown may only take effect with a button).
            for k in range(dropdowns.count()):
                dd = dropdowns.nth(k)
                values = dd.locator("option").evaluate_all("os => os.map(o => o.value)")
                assert values, f"{name}, cell {c['index']}: an empty dropdown"
                if len(values) < 2 or not dd.is_visible():
                    continue
                before = root.evaluate(SNAPSHOT)
                dd.select_option(values[1] if dd.input_value() == values[0] else values[0])
                ok = _changed(page, root, before, name, 8)
                controls, reacted = controls + 1, reacted + ok
                report.append(f"cell {c['index']} dropdown {k}: " + ("view changed" if ok else "NO visible change"))
            # Toggle buttons: press another one (reported, like dropdowns).
            toggles = root.locator(".widget-toggle-buttons")
            for k in range(toggles.count()):
                other = toggles.nth(k).locator("button:not(.mod-active)")
                if other.count() == 0 or not other.first.is_visible():
                    continue
                before = root.evaluate(SNAPSHOT)
                other.first.click()
                ok = _changed(page, root, before, name, 8)
                controls, reacted = controls + 1, reacted + ok
                report.append(f"cell {c['index']} toggle {k}: " + ("view changed" if ok else "NO visible change"))
    if controls:
        assert reacted, f"{name}: no widget control changed what is shown: {report}"

    # 4. Moving them raised nothing: not in the notebook, not on screen, not in the kernel's log.
    _wait_idle(page, name)
    st = page.evaluate(STATE, name)
    assert not st["errors"], f"{name}: errors after moving the widgets: {st['errors']}"
    for c in page.evaluate(DOM, name)["cells"]:
        assert not [s for s in c["stderr"] if TRACEBACK.search(s)], \
            f"{name}, cell {c['index']}: traceback shown after moving the widgets: {c['stderr']}"
        assert not c["widgetErrorText"], f"{name}, cell {c['index']}: a widget failed after moving it"
    errors = page.evaluate(KERNEL_ERRORS)
    assert not errors, f"{name}: the kernel reported errors (a widget callback?):\n" + "\n".join(errors)

    # 5. Nothing pops up over the lesson: no "get notified about Jupyter news?", no update check,
    #    no other notification (compresslab installs these JupyterLab defaults for a class).
    toasts = page.locator(".Toastify__toast").all_inner_texts()
    assert not toasts, f"{name}: JupyterLab shows a pop-up over the lesson: {toasts}"

    # 6. A screenshot with the lesson's first interactive widget at the top, for a person to check.
    if first_root is not None:
        first_root.evaluate("(el) => el.closest('.jp-Cell').scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    page.screenshot(path=str(screenshot_dir / f"{lesson}.png"), full_page=True)
    print(f"{name}: ran in {ran:.0f} s, checked in {time.monotonic() - t0 - ran:.0f} s; "
          f"{len(widget_cells)} widget cells; " + "; ".join(report))
