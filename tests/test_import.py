"""`import compresslab` needs only NumPy and imports nothing heavy."""
import subprocess
import sys

BLOCKER = (
    "import sys\n"
    "ATTEMPTED = []  # every blocked import tried, also one whose ImportError was caught\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('torch', 'matplotlib', 'ipywidgets', 'tqdm', 'scipy', 'IPython'):\n"
    "            ATTEMPTED.append(name)\n"
    "            raise ImportError('blocked ' + name)\n"
    "sys.meta_path.insert(0, Block())\n"
)


def _run_without_heavy_packages(code):
    """Run ``code`` in a fresh Python where torch, matplotlib, scipy, ... cannot be imported."""
    return subprocess.run([sys.executable, "-c", BLOCKER + code], capture_output=True, text=True)


def test_import_with_only_numpy():
    # A blocked package can never be in sys.modules, so the check is that none was even tried:
    # an import whose ImportError is caught (an optional import at import time) shows up too.
    code = (
        "import compresslab, compresslab.nn, compresslab.data, compresslab.speed, compresslab.backend\n"
        "import compresslab.exercises\n"
        "print(ATTEMPTED, compresslab.__version__)\n"
    )
    out = _run_without_heavy_packages(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[] ")


def test_import_loads_nothing_heavy_when_everything_is_installed():
    code = (
        "import sys, compresslab, compresslab.nn, compresslab.data, compresslab.speed, compresslab.backend\n"
        "import compresslab.exercises\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'ipywidgets', 'tqdm', 'scipy', 'IPython')\n"
        "             if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_blocker_sees_a_caught_import():
    out = _run_without_heavy_packages("try:\n    import scipy\nexcept ImportError:\n    pass\nprint(ATTEMPTED)\n")
    assert out.stdout.strip() == "['scipy']"


def test_training_works_without_tqdm_or_torch():
    code = (
        "import numpy as np, compresslab as cl\n"
        "m = cl.nn.mlp((4, 3), seed=0)\n"
        "h = cl.nn.fit(m, np.random.default_rng(0).random((20, 4)), np.arange(20) % 3, epochs=2)\n"
        "print(len(h.loss))\n"
    )
    out = _run_without_heavy_packages(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"


def test_bare_import_is_lazy():
    code = "import sys, compresslab; print(sorted(m for m in sys.modules if m.startswith('compresslab')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['compresslab', 'compresslab._lazy']"


def test_bench_without_torch_says_what_to_install():
    code = "from compresslab import cli\nraise SystemExit(cli.main(['bench', '--no-progress']))\n"
    out = _run_without_heavy_packages(code)
    assert out.returncode == 2, out.stderr
    assert "needs torch" in out.stderr and "pip install torch" in out.stderr
    assert "Traceback" not in out.stderr


def test_needs_prints_one_line_and_the_install_command():
    code = (
        "from compresslab import backend\n"
        "print(backend.optional('torch'), backend.needs('torch', 'torch int8 timings'))\n"
        "print(backend.needs('numpy', 'anything'))\n"
        "print(backend.needs('torch', 'a GPU sweep'))\n"
    )
    out = _run_without_heavy_packages(code)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("[skipped: needs torch, not installed] This section would show torch int8 timings.")
    assert "download.pytorch.org/whl/cpu" in lines[0]
    assert lines[1:3] == ["None False", "True"]
    # the install line once per package; later sections only say what they would show
    assert lines[3] == ("[skipped: needs torch, not installed] This section would show a GPU sweep. "
                        "(How to install it: see the first such line above.)")
    assert lines[4:] == ["False"]
