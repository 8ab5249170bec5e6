"""Helpers for the browser tests: a throwaway JupyterLab server and process bookkeeping.

The server runs in its own process group with every Jupyter directory (runtime, config, user
data, settings, workspaces, IPython) under a temporary folder, so a test run neither reads nor
changes the user's Jupyter setup. The system data path (``sys.prefix/share/jupyter``) is kept:
that is where ``jupyterlab_widgets`` installs the ipywidgets extension for JupyterLab.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

WIDGETS_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
REPO = Path(__file__).resolve().parents[2]


def lessons_folder() -> Path:
    """``$COMPRESSLAB_BROWSER_LESSONS`` or the repository's ``lessons/``."""
    return Path(os.environ.get("COMPRESSLAB_BROWSER_LESSONS") or REPO / "lessons")


def lesson_paths() -> list[Path]:
    """Every notebook in the lessons folder: a new lesson is tested without editing the tests."""
    return sorted(lessons_folder().glob("*.ipynb"))


# --------------------------------------------------------------------------------------------
# Processes (Linux /proc; no psutil needed)
# --------------------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, int] | None:
    """``(ppid, start time)`` of a live process, or None when it is gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # the name may hold spaces and parentheses
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[19])


def descendants(pid: int) -> dict[int, int]:
    """All live descendants of ``pid`` as ``{pid: start time}`` (start time guards pid reuse)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                children.setdefault(st[0], []).append(int(entry))
                starts[int(entry)] = st[1]
    out, todo = {}, [pid]
    while todo:
        for kid in children.get(todo.pop(), []):
            if kid not in out:
                out[kid] = starts[kid]
                todo.append(kid)
    return out


def alive(pid: int, start: int | None = None) -> bool:
    st = _stat(pid)
    return st is not None and (start is None or st[1] == start)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (e.g. a temporary folder)."""
    return [int(p) for p in os.listdir("/proc")
            if p.isdigit() and int(p) != os.getpid() and alive(int(p)) and text in cmdline(int(p))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------
class JupyterLab:
    """``jupyter lab`` on 127.0.0.1 for one test session; :meth:`stop` always cleans up."""

    def __init__(self, root: Path, home: Path):
        self.root, self.home = Path(root), Path(home)
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.home / "jupyterlab.log"
        self.proc: subprocess.Popen | None = None
        self.seen: dict[int, int] = {}  # every descendant ever seen: pid -> start time

    # -- setup ------------------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        dirs = {name: self.home / name for name in ("runtime", "config", "data", "settings",
                                                     "workspaces", "ipython")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        settings = dirs["settings"]
        # Every cell in the DOM (no virtual scrolling), so the tests can read every output. The
        # news and update pop-ups are left to the defaults that compresslab installs
        # (compresslab/jupyter/overrides.json): the tests check that a learner sees none.
        _write_json(settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
                    {"windowingMode": "none"})
        env = dict(os.environ)
        # The pytest process (and CI) uses the Agg backend; the kernel must pick the inline one,
        # which ipykernel only does when MPLBACKEND is unset.
        env.pop("MPLBACKEND", None)
        env.pop("JUPYTER_PATH", None)
        env.update(JUPYTER_RUNTIME_DIR=str(dirs["runtime"]), JUPYTER_CONFIG_DIR=str(dirs["config"]),
                   JUPYTER_DATA_DIR=str(dirs["data"]), JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]), IPYTHONDIR=str(dirs["ipython"]),
                   JUPYTER_PLATFORM_DIRS="0", PYTHONUNBUFFERED="1")
        return env

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--ServerApp.root_dir={self.root}", f"--IdentityProvider.token={self.token}",
               # window.jupyterapp, so the tests can read the notebook model and kernel state
               "--LabApp.expose_app_in_browser=True",
               # no request leaves the machine (the pop-ups asking about them are off by default)
               "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        return cmd

    def start(self, timeout: float = 120) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self._environment(),
                                     cwd=self.root, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.api("GET", "/api/status") is not None:
                    return
            except (OSError, ValueError):
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    # -- talking to it ---------------------------------------------------------------------
    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}token={self.token}"

    def get_text(self, path: str, timeout: float = 30) -> str:
        with urllib.request.urlopen(self.url(path), timeout=timeout) as r:
            return r.read().decode()

    def api(self, method: str, path: str, timeout: float = 30):
        req = urllib.request.Request(f"{self.base}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else {}

    def page_config(self) -> dict:
        """The ``jupyter-config-data`` JSON that JupyterLab embeds in ``/lab``."""
        html = self.get_text("/lab")
        start = html.index('id="jupyter-config-data"')
        start = html.index(">", start) + 1
        return json.loads(html[start:html.index("</script>", start)])

    def remember_processes(self) -> None:
        """Note the server's descendants now: kernels leave the process tree if the server dies."""
        if self.proc is not None and self.proc.poll() is None:
            self.seen.update(descendants(self.proc.pid))

    def shutdown_sessions(self, path: str | None = None) -> None:
        """Shut down the kernel of every session (or of the sessions of one notebook)."""
        self.remember_processes()
        try:
            for s in self.api("GET", "/api/sessions"):
                if path is None or s.get("path") == path:
                    self.api("DELETE", f"/api/sessions/{s['id']}", timeout=60)
        except (OSError, ValueError):
            pass

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    # -- teardown --------------------------------------------------------------------------
    def stop(self, grace: float = 30) -> list[str]:
        """Stop the server and everything it started; return what had to be killed by force.

        Kernels first (through the REST API, as JupyterLab does), then SIGTERM to the server's
        process group, then SIGKILL to whatever is left, including kernels, which jupyter_client
        starts in sessions of their own.
        """
        if self.proc is None:
            return []
        survivors: list[str] = []
        if self.proc.poll() is None:
            self.shutdown_sessions()
            self.remember_processes()
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                survivors.append(f"jupyter lab (pid {self.proc.pid}) ignored SIGTERM for {grace:.0f} s")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p, s) for p, s in self.seen.items()):
            time.sleep(0.2)
        for pid, start in self.seen.items():
            if alive(pid, start):
                survivors.append(f"pid {pid} survived: {cmdline(pid)[:200]}")
        # Force, whatever happened above: nothing may outlive the suite.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid, start in self.seen.items():
            if alive(pid, start):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        return survivors


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
