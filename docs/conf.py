"""Sphinx configuration of the course website: lessons, guides and API reference, built offline.

Build (after ``pip install -e ".[docs]"``), warnings as errors, nitpicky about references::

    sphinx-build -W --keep-going -n -b html docs docs/_build/html

What it reads:

* every ``lessons/*.ipynb`` **with its stored outputs** (never executed: ``nb_execution_mode``
  is ``"off"``). Each lesson is copied to ``docs/lessons/`` at the start of the build (a build
  product, git-ignored), with every widget output replaced by a static note (a widget needs a
  live kernel; a static page would show a broken frame), tqdm progress bars dropped and, in the
  student edition (the default), the solutions stripped;
* ``README.md`` (the overview, included by ``index.md``), ``teaching.md``, ``deploy.md``,
  ``maintainers.md``;
* the numpydoc docstrings of every public module: ``compresslab.X`` for each submodule with an
  ``__all__``, and their submodules with an ``__all__`` (one page each, written to
  ``docs/api/`` at the start of the build, git-ignored). A package's page documents every name
  of its ``__all__``; a submodule's page documents the names its package does not re-export and
  links to the others.

Where the course lives is set once, here, from the environment (documented defaults):

``COMPRESSLAB_REPO_URL``
    the git repository of the course (default: ``DEFAULT_REPO_URL``, the repository the README's
    Binder badge opens; ``tests/test_site.py`` checks that the two agree);
``COMPRESSLAB_REPO_BRANCH``
    its branch (default ``main``);
``COMPRESSLAB_BINDERHUB_URL``
    a BinderHub (default ``https://mybinder.org``; empty: no Binder link);
``COMPRESSLAB_JUPYTERHUB_URL``
    the course's JupyterHub, whose nbgitpuller clones the repository (default empty: no link);
``COMPRESSLAB_SITE_EDITION``
    ``student`` (default: a public site shows no solutions; the exercise cells read as in
    ``compresslab student``) or ``instructor`` (the lessons as they are, solutions included);
``COMPRESSLAB_MATHJAX_PATH``
    MathJax for the lessons' maths, if the course hosts it (default: Sphinx's, from a CDN).

Each lesson page gets a launch menu (Binder, JupyterHub) built from the first four; nothing
else in the site names a repository or a hub. (``COMPRESSLAB_SITE_REPO``, default the folder
above this one, is the checkout whose lessons and package are documented: tools/build_site.py
builds from a copy of docs/.)
"""
from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
# The repository whose lessons and package are documented (a test builds a copy of docs/ elsewhere).
REPO = Path(os.environ.get("COMPRESSLAB_SITE_REPO") or DOCS.parent).resolve()
sys.path.insert(0, str(REPO))

import compresslab  # noqa: E402

# ---- where the course lives: the one place ------------------------------------------------------
DEFAULT_REPO_URL = "https://github.com/compresslab/compresslab"
REPO_URL = os.environ.get("COMPRESSLAB_REPO_URL", DEFAULT_REPO_URL).rstrip("/")
REPO_BRANCH = os.environ.get("COMPRESSLAB_REPO_BRANCH", "main")
BINDERHUB_URL = os.environ.get("COMPRESSLAB_BINDERHUB_URL", "https://mybinder.org").rstrip("/")
JUPYTERHUB_URL = os.environ.get("COMPRESSLAB_JUPYTERHUB_URL", "").rstrip("/")
SITE_EDITION = os.environ.get("COMPRESSLAB_SITE_EDITION", "student")
if SITE_EDITION not in ("student", "instructor"):
    raise ValueError(f"COMPRESSLAB_SITE_EDITION must be 'student' or 'instructor', not {SITE_EDITION!r}")

# ---- project ------------------------------------------------------------------------------------
project = "compresslab"
author = "compresslab developers"
copyright = "compresslab developers, MIT licence"
version = release = compresslab.__version__

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_static_path = ["_static"]
html_css_files = ["compresslab.css"]
nitpicky = True  # `-n` on the command line says the same: every reference must resolve
# No intersphinx (it needs the network) and nothing silenced: no nitpick_ignore. Docstrings name
# other projects' objects as ``code``, not as references; resolve_alias below (compresslab's own
# names under another module path) is the only help references get.

# ---- notebooks (MyST-NB): stored outputs, never executed -----------------------------------------
nb_execution_mode = "off"
nb_output_stderr = "show"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3  # README's and the guides' #section links
suppress_warnings = [
    # Lessons and guides use one "#" title then "##" sections, but some cells start at "###":
    # a jump in heading level is a style matter, not a broken page.
    "myst.header",
]

# The lessons' $...$ maths is typeset by MathJax. Offline first: the docs extra installs
# jupyter-server-mathjax (MathJax 2.7, what the classic notebook served), copied into the site as
# _static/mathjax/; without it, Sphinx's default (MathJax from a CDN); COMPRESSLAB_MATHJAX_PATH
# names another copy. Without any MathJax a reader sees the TeX source.
try:
    import jupyter_server_mathjax
    MATHJAX_DIR: Path | None = Path(jupyter_server_mathjax.__file__).parent / "static"
except ImportError:
    MATHJAX_DIR = None
if os.environ.get("COMPRESSLAB_MATHJAX_PATH"):
    mathjax_path = os.environ["COMPRESSLAB_MATHJAX_PATH"]
    MATHJAX_DIR = None
elif MATHJAX_DIR is not None and (MATHJAX_DIR / "MathJax.js").is_file():
    mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"  # relative to _static/
    mathjax2_config = {"tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]],
                                   "processEscapes": True,
                                   # MyST-NB marks notebook cells mathjax_ignore; its maths is in class "math"
                                   "processClass": "tex2jax_process|mathjax_process|math|output_area",
                                   "ignoreClass": "tex2jax_ignore|mathjax_ignore"},
                       "HTML-CSS": {"availableFonts": ["STIX-Web"], "preferredFont": "STIX-Web",
                                    "webFont": "STIX-Web", "imageFont": None},  # the fonts it ships
                       "messageStyle": "none"}
else:
    MATHJAX_DIR = None

# ---- API reference: numpydoc docstrings through napoleon ----------------------------------------
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_param = False  # parameter types stay text ("array_like, shape (n,)"), not references
napoleon_use_rtype = False
napoleon_use_ivar = True
autodoc_typehints = "none"  # the numpydoc Parameters section states every type
autodoc_member_order = "bysource"
add_module_names = False

# ---- theme ---------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "compresslab"
html_theme_options = {
    "repository_url": REPO_URL,
    "repository_branch": REPO_BRANCH,
    "path_to_docs": "",  # lessons/X.ipynb is the same path in the site and in the repository
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {
        "binderhub_url": BINDERHUB_URL,
        "jupyterhub_url": JUPYTERHUB_URL,
        "notebook_interface": "jupyterlab",
    },
    "show_toc_level": 2,
    "home_page_in_toc": True,
}
html_last_updated_fmt = None
html_show_sourcelink = False


# =================================================================================================
# Lessons: copies with static notes in place of widgets
# =================================================================================================
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ('<p class="cl-widget-note">Interactive widget: run this lesson in JupyterLab to use it '
               '(the launch menu at the top of this page opens it on Binder or your course\'s hub).</p>')
PROGRESS = re.compile(r"\d+%\|")  # tqdm's text form: "training:   0%|          | 0/30"


def static_lesson(nb: dict, edition: str = "student") -> dict:
    """The notebook ``nb`` as a static page shows it: widgets become a note, progress bars go.

    In the student edition (the default: the site is public) every ``### BEGIN SOLUTION`` ...
    ``### END SOLUTION`` region is replaced as ``compresslab student`` does, and the outputs of
    those cells, which show the solution at work, are dropped; every other output is kept.
    """
    from compresslab.course import strip_solutions

    nb = json.loads(json.dumps(nb))
    nb.get("metadata", {}).pop("widgets", None)  # no widget state: MyST-NB then loads no widget JS
    for i, cell in enumerate(nb.get("cells", [])):
        source = "".join(cell.get("source", ""))
        if edition == "student" and ("BEGIN SOLUTION" in source or "END SOLUTION" in source):
            cell["source"] = strip_solutions(source, markdown=cell["cell_type"] == "markdown", where=f"cell {i}")
            if "outputs" in cell:
                cell["outputs"] = []
            continue
        outputs = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data:
                text = "".join(data.get("text/plain", ""))
                if PROGRESS.search(text):
                    continue
                out = {**out, "data": {"text/html": WIDGET_NOTE, "text/plain": "interactive widget"}}
            outputs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outputs
    return nb


def lesson_sources() -> list[Path]:
    """Every lesson: ``lessons/*.ipynb`` (a new lesson joins the site without editing anything)."""
    return sorted((REPO / "lessons").glob("*.ipynb"))


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def sync_lessons(dest: Path) -> None:
    dest.mkdir(exist_ok=True)
    wanted = set()
    for src in lesson_sources():
        nb = json.loads(src.read_text(encoding="utf-8"))
        page = static_lesson(nb, SITE_EDITION)
        _write_if_changed(dest / src.name, json.dumps(page, indent=1, ensure_ascii=False) + "\n")
        wanted.add(src.name)
    for old in dest.glob("*.ipynb"):
        if old.name not in wanted:
            old.unlink()


# =================================================================================================
# API reference: one page per public module, from __all__
# =================================================================================================
def public_modules() -> list[str]:
    """``compresslab.X`` for every submodule with an ``__all__``, then their submodules with one."""
    names = []
    for sub in compresslab._SUBMODULES:
        mod = importlib.import_module(f"compresslab.{sub}")
        if not hasattr(mod, "__all__"):
            continue  # the command line, grading and the widgets are not a library API
        names.append(mod.__name__)
        if hasattr(mod, "__path__"):
            for info in pkgutil.iter_modules(mod.__path__):
                if info.name.startswith("_"):
                    continue
                child = importlib.import_module(f"{mod.__name__}.{info.name}")
                if hasattr(child, "__all__"):
                    names.append(child.__name__)
    return names


def documented_here(module: str) -> tuple[list[str], list[str]]:
    """(names documented on ``module``'s page, names re-exported by its package and documented there)."""
    mod = importlib.import_module(module)
    parent = module.rpartition(".")[0]
    parent_all = set(getattr(importlib.import_module(parent), "__all__", ())) if parent != "compresslab" else set()
    own, elsewhere = [], []
    for name in mod.__all__:
        if name in parent_all and getattr(importlib.import_module(parent), name, None) is getattr(mod, name):
            elsewhere.append(name)
        else:
            own.append(name)
    return own, elsewhere


def _is_data(obj) -> bool:
    return not (callable(obj) or isinstance(obj, type) or hasattr(obj, "__path__") or hasattr(obj, "__file__"))


def api_page(module: str) -> str:
    own, elsewhere = documented_here(module)
    mod = importlib.import_module(module)
    # autodoc's automodule documents a constant only when its module's source has a doc comment
    # for it; a constant re-exported by a package has none there, so each gets its own autodata.
    data = [name for name in own if _is_data(getattr(mod, name))]
    members = [name for name in own if name not in data]
    parent = module.rpartition(".")[0]
    lines = [f"# `{module}`", "", "```{eval-rst}", f".. automodule:: {module}"]
    if members:  # listed explicitly, so a public function without a docstring is listed too
        lines += ["   :members: " + ", ".join(members), "   :undoc-members:"]
    lines.append("")
    for name in data:
        lines.append(f".. autodata:: {module}.{name}")
        if len(repr(getattr(mod, name))) > 100:
            lines.append("   :no-value:")
        lines.append("")
    lines += ["```", ""]
    if elsewhere:
        lines += [f"Also in this module, documented with the package {{py:mod}}`{parent}` that re-exports them:", ""]
        lines += [f"* {{py:obj}}`{module.rpartition('.')[2]}.{name} <{parent}.{name}>`" for name in elsewhere]
        lines.append("")
    return "\n".join(lines)


def sync_api(dest: Path) -> None:
    wanted = set()
    for module in PUBLIC_MODULES:
        name = f"{module}.md"
        _write_if_changed(dest / name, api_page(module))
        wanted.add(name)
    for old in dest.glob("compresslab*.md"):
        if old.name not in wanted:
            old.unlink()


PUBLIC_MODULES = public_modules()
sync_lessons(DOCS / "lessons")
sync_api(DOCS / "api")


# =================================================================================================
# Docstrings: what napoleon would turn into references that are not
# =================================================================================================
def _python_object(name: str):
    """The object ``name`` (``compresslab.quant.linear.quantize``) names, or None."""
    if not name.startswith("compresslab"):
        return None
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def no_type_docstring(app, what, name, obj, options, lines) -> None:
    """A constant (``AA_BAND = 0.02``) has no docstring of its own: not its type's (``float``'s) either."""
    import inspect

    if what in ("data", "attribute") and not isinstance(obj, type):
        doc = type(obj).__doc__
        own = inspect.cleandoc(doc) if isinstance(doc, str) else ""
        if own and "\n".join(lines).strip() == own.strip():
            lines[:] = []


def plain_types(app, what, name, obj, options, lines) -> None:
    """After napoleon: attribute types as text, references numbered per docstring, short names qualified.

    * napoleon writes a class's ``Attributes`` types as ``:vartype x: T`` and an attribute whose
      docstring starts "Bytes: ..." as ``:type: Bytes``; Sphinx would make each word of ``T`` a
      class reference ("float64 array, shape (out_features,)"). numpydoc's types are prose, so
      they stay prose: ``(T)`` in front of the description.
    * numpydoc's ``.. [1]`` labels repeat from one docstring to the next on a page: a cited one
      gets the object's name as prefix, one never cited (``[1]_``) becomes a list item ``[1] ...``.
    * ``:func:`q8_0``` in a docstring means the module where the object is defined; the page may
      document it under its package, so the module is written out.
    """
    out, vartypes = [], {}
    for line in lines:
        m = re.match(r"^(\s*):vartype (.+?): (.*)$", line)
        if m:
            vartypes[m.group(2)] = m.group(3)
            continue
        out.append(line)
    for i, line in enumerate(out):
        m = re.match(r"^(\s*):ivar (.+?):(?: (.*))?$", line)
        if m:
            field = m.group(2).replace(", ", ",")  # "M0, n" would read as type "M0," and name "n"
            kind = f"(*{vartypes[m.group(2)]}*) " if m.group(2) in vartypes else ""
            out[i] = f"{m.group(1)}:ivar {field}: {kind}{m.group(3) or ''}"
    if what in ("attribute", "data", "property"):
        types = [line for line in out if line.startswith(":type: ")]
        if types:
            out = [line for line in out if not line.startswith(":type: ")]
            first = next((i for i, line in enumerate(out) if line.strip()), None)
            text = types[0][len(":type: "):]
            if first is None:
                out.append(text)
            else:
                out[first] = f"{text}: {out[first].lstrip()}"
    tag = re.sub(r"\W", "-", name)
    body = "\n".join(out)
    result, inside = [], None  # inside: indentation of an uncited reference's list item
    for line in out:
        m = re.match(r"^(\s*)\.\. \[(\d+)\] ?(.*)$", line)
        if m and f"[{m.group(2)}]_" in body:
            result.append(f"{m.group(1)}.. [{tag}-{m.group(2)}] {m.group(3)}")
            inside = None
        elif m:
            result.append(f"{m.group(1)}* [{m.group(2)}] {m.group(3)}")
            inside = m.group(1)
        elif inside is not None and line.strip() and len(line) - len(line.lstrip()) > len(inside):
            result.append(f"{inside}  {line.lstrip()}")
        else:
            if line.strip():
                inside = None
            result.append(re.sub(r"\[(\d+)\]_", rf"[{tag}-\1]_", line))
    home = obj.__name__ if what == "module" else getattr(obj, "__module__", None)
    module = sys.modules.get(home or "")
    if module is not None:
        def qualify(m):
            target = m.group(3)
            head = target.split(".")[0]
            if m.group(2) or target.startswith("compresslab") or not hasattr(module, head):
                return m.group(0)
            return f":{m.group(1)}:`{target} <{home}.{target}>`"
        result = [re.sub(r":(func|class|meth|attr|data|obj|exc|mod):`(~|[^`<]*<)?([\w.]+)>?`", qualify, line)
                  for line in result]
    lines[:] = result


# =================================================================================================
# References: one entry per object, found under any name it is imported as
# =================================================================================================
def _documented(app) -> dict[int, list[str]]:
    """``id(object) -> [documented full names]``, built once per build from the Python domain."""
    cache = getattr(app, "_cl_documented", None)  # on the app, not the (pickled) environment: ids are per process
    if cache is None:
        cache = {}
        for full in app.env.get_domain("py").objects:
            obj = _python_object(full)
            if obj is not None:
                cache.setdefault(id(obj), []).append(full)
        app._cl_documented = cache
    return cache


def canonical(app, name: str) -> tuple[str | None, bool]:
    """(the documented full name of the object ``name`` names, whether ``name`` is a real object)."""
    objects = app.env.get_domain("py").objects
    if name in objects:
        return name, True
    obj = _python_object(name)
    if obj is None:
        return None, False
    last = name.rpartition(".")[2]
    for full in _documented(app).get(id(obj), []):
        if full.rpartition(".")[2] == last:
            return full, True
    return None, True


def resolve_alias(app, env, node, contnode):
    """Resolve a Python reference the domain missed: the same object under another module path.

    Docstrings name objects where they are defined (``compresslab.speed.timing.thread_scaling``,
    or ``qparams`` inside ``compresslab.quant.observers``) while the reference documents them once,
    where the learner calls them (``compresslab.speed.thread_scaling``). A reference to a real
    object that the API reference does not document (a private helper, compresslab.plots) is shown
    as text, not a link. Anything else, a name that does not exist, stays a warning: with ``-W``
    a broken reference fails the build.
    """
    if node.get("refdomain") != "py":
        return None
    from sphinx.util.nodes import make_refnode

    target = node["reftarget"].lstrip(".~")
    module, cls = node.get("py:module") or "", node.get("py:class") or ""
    tries = [target]
    if module:
        tries += [f"{module}.{cls}.{target}" if cls else None, f"{module}.{target}"]
        parent = module
        while "." in parent:
            parent = parent.rpartition(".")[0]
            tries.append(f"{parent}.{target}")
    for name in filter(None, tries):
        full, real = canonical(app, name)
        if full is not None:
            entry = env.get_domain("py").objects[full]
            return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, full)
        if real:
            return contnode
    return None


# =================================================================================================
# Cross-links: `cl.quant.quantize` in a lesson's text links to its API entry
# =================================================================================================
DEFAULT_ALIASES = {"cl": "compresslab", "compresslab": "compresslab"}  # the README's `cl.quant.quantize`


def import_aliases(source: Path) -> dict[str, str]:
    """``{name: full name}`` for what a lesson's code imports from compresslab (``Q`` -> ``compresslab.quant``).

    Lessons write ``Q.quantize`` after ``from compresslab import quant as Q``: the lesson's own
    imports say what its text means. Magic lines are dropped; a cell that still does not parse is skipped.
    """
    import ast

    aliases = dict(DEFAULT_ALIASES)
    if source.suffix != ".ipynb":
        return aliases
    for cell in json.loads(source.read_text(encoding="utf-8")).get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        try:
            code = "".join(cell.get("source", ""))
            tree = ast.parse(re.sub(r"(?m)^\s*[%!].*$", "", code))  # IPython magics and shell lines
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "compresslab":
                        aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else "compresslab"
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "compresslab":
                for a in node.names:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    for module in PUBLIC_MODULES:  # `quant.quantize` in prose means compresslab.quant too
        aliases.setdefault(module.split(".")[1], f"compresslab.{module.split('.')[1]}")
    return aliases


def _candidates(text: str, aliases: dict[str, str]) -> list[str]:
    """Full names that the inline code ``text`` may mean (``Q.quantize(x, qp)`` -> compresslab.quant.quantize)."""
    name = re.sub(r"\(.*\)$", "", text.strip())
    if not re.fullmatch(r"[A-Za-z_][\w.]*", name):
        return []
    head, _, rest = name.partition(".")
    if head not in aliases or (not rest and aliases[head].count(".") < 2):
        return []  # a bare name links only when the lesson imported that very object
    return [aliases[head] + ("." + rest if rest else "")]


def link_api_names(app, doctree, docname: str) -> None:
    """Turn inline code naming a documented object into a link to its entry (never a broken link)."""
    from docutils import nodes

    if docname.startswith("api/"):
        return
    objects = app.env.get_domain("py").objects
    aliases = import_aliases(Path(app.env.doc2path(docname)))
    for literal in list(doctree.findall(nodes.literal)):
        if isinstance(literal.parent, (nodes.reference, nodes.literal_block)) or "xref" in literal["classes"]:
            continue
        for name in _candidates(literal.astext(), aliases):
            full, _ = canonical(app, name)
            if full is None:
                continue
            entry = objects[full]
            uri = app.builder.get_relative_uri(docname, entry.docname) + "#" + entry.node_id
            ref = nodes.reference("", "", internal=True, refuri=uri, reftitle=full, classes=["cl-api-link"])
            literal.replace_self(ref)
            ref.append(literal)
            break


def copy_mathjax(app, exception) -> None:
    """Put the local MathJax into the site (``_static/mathjax/``) once the HTML is written."""
    if exception is None and MATHJAX_DIR is not None and app.builder.format == "html":
        dest = Path(app.outdir) / "_static" / "mathjax"
        if not (dest / "MathJax.js").is_file():
            shutil.copytree(MATHJAX_DIR, dest, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.py", "__pycache__"))


def setup(app):
    app.connect("build-finished", copy_mathjax)
    app.connect("autodoc-process-docstring", no_type_docstring, priority=400)  # before napoleon (500)
    app.connect("autodoc-process-docstring", plain_types, priority=600)  # after napoleon
    app.connect("missing-reference", resolve_alias)
    app.connect("doctree-resolved", link_api_names)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
