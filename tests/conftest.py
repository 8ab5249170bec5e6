import os

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def digits():
    import compresslab as cl

    return cl.data.load_digits(seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# ---------------------------------------------------------------------------------------------
# Lessons that need an optional package (notebook metadata {"compresslab": {"requires": [...]}})
# are skipped with a clear reason when it is missing -- by nbval and by every test that takes
# a lesson path as a parameter (student editions, browser, nbgrader).
# ---------------------------------------------------------------------------------------------
def _missing_requirements(path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(str(path))
    if path.suffix != ".ipynb" or not path.exists():
        return []
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except ValueError:
        return []
    needs = meta.get("compresslab", {}).get("requires", [])
    return [m for m in needs if importlib.util.find_spec(m) is None]


def pytest_collection_modifyitems(config, items):
    from pathlib import Path

    for item in items:
        candidates = [Path(str(item.fspath))]
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            candidates += [v for v in callspec.params.values() if isinstance(v, Path)]
        for path in candidates:
            missing = _missing_requirements(path)
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"{path.name} needs {', '.join(missing)} "
                                                        "(pip install 'compresslab[torch]')"))
                break
