"""Lesson 02b widget: every control changes the readout, and a change costs at most one
quantization of the model and one evaluation on the split it is given -- the validation split in
the lesson (counted, not timed: wall-clock latency is benchmarks/widget_latency.py's job)."""
import ipywidgets  # noqa: F401  (the test extra installs it: a broken install fails here, loudly)
import pytest

from compresslab import data, nn
from compresslab import quant as Q
from compresslab.widgets.quant import OBSERVER_LABELS, quant_explorer

CONTROLS = ("bits", "scheme", "granularity", "observer")


@pytest.fixture(scope="module")
def explorer():
    d = data.load_digits(seed=0)
    m = nn.mlp((64, 300, 100, 10), seed=0)
    nn.fit(m, d.X_train, d.y_train, epochs=5, progress=False)
    return quant_explorer(m, d.X_val, d.y_val, bits=4)


def test_controls_change_the_readout_and_figure(explorer):
    before = (explorer.readout.value, explorer.figure.value)
    explorer.bits.value = 2
    assert explorer.readout.value != before[0] and explorer.figure.value != before[1]
    assert "2-bit" in explorer.readout.value and "SQNR" in explorer.readout.value
    for control, value in ((explorer.scheme, "affine"), (explorer.granularity, "per channel"),
                           (explorer.observer, "MSE search")):
        text = explorer.readout.value
        control.value = value
        assert explorer.readout.value != text
    assert explorer.figure.value.count("<svg") == 3


def test_the_readout_names_the_split_it_scores(explorer):
    """The lesson passes the validation split: the readout says so, and its accuracies are those
    of the validation images (the test split is never read by the widget)."""
    assert "validation accuracy" in explorer.readout.value and "test accuracy" not in explorer.readout.value
    assert explorer.float_acc == nn.evaluate(explorer.model, explorer.X, explorer.y)
    d = data.load_digits(seed=0)
    assert len(explorer.y) == len(d.y_val) and (explorer.y == d.y_val).all()
    other = quant_explorer(explorer.model, d.X_test, d.y_test, split="test", bits=2)
    assert "test accuracy" in other.readout.value


def test_more_bits_more_sqnr(explorer):
    explorer.scheme.value, explorer.granularity.value, explorer.observer.value = "symmetric", "per tensor", "min-max"
    s = [explorer.result((b, "symmetric", False, "minmax"))["sqnr"] for b in (2, 4, 8)]
    assert s[0] < s[1] < s[2] and 5 * 6 < s[2] - s[0] < 7 * 6


def one_control_at_a_time(options):
    """Every combination of the controls' options, each step moving one control only, as a
    learner does (a reflected Gray code): every step is then exactly one update."""
    seq = [()]
    for opts in options:
        seq = [prefix + (o,) for i, prefix in enumerate(seq) for o in (opts if i % 2 == 0 else opts[::-1])]
    return seq


def counted(monkeypatch, owner, name, log):
    """Replace ``owner.name`` by a wrapper that appends to ``log`` (the function still runs)."""
    real = getattr(owner, name)

    def wrapper(*args, **kwargs):
        log.append((name, len(args[1]) if name == "evaluate" else None))
        return real(*args, **kwargs)
    monkeypatch.setattr(owner, name, wrapper)


def test_a_change_costs_one_quantization_and_one_evaluation_a_revisit_nothing(explorer, monkeypatch):
    """The 100 ms budget as a machine-independent cost: a change quantizes the model once and
    evaluates it once on the split it was given (never trains); going back to a setting costs
    nothing."""
    model, n_test = explorer.model, len(explorer.y)
    n_layers = len(explorer.layers)
    log = []
    for owner, name in ((nn, "evaluate"), (Q, "qparams"), (Q, "fake_quantize")):
        counted(monkeypatch, owner, name, log)
    monkeypatch.setattr(nn, "fit", lambda *a, **k: pytest.fail("a widget update trained a model"))

    ex = quant_explorer(model, explorer.X, explorer.y, bits=2, scheme="affine",
                        per_channel=False, observer="minmax")
    # the counters see the widget's own calls: the float accuracy, then the first setting
    assert [e for e in log if e[0] == "evaluate"] == [("evaluate", n_test)] * 2
    assert sum(e[0] == "qparams" for e in log) == n_layers

    path = one_control_at_a_time([(2, 3, 4, 8), ("affine", "symmetric"), ("per tensor", "per channel"),
                                  list(OBSERVER_LABELS)])
    assert path[0] == (2, "affine", "per tensor", "min-max")     # where the explorer starts
    one_setting = sorted([("evaluate", n_test)] + [("qparams", None), ("fake_quantize", None)] * n_layers)
    for pass_, steps, expected in (("first visit", path[1:], one_setting), ("revisit", path[-2::-1], [])):
        for step in steps:
            log.clear()
            changed = [c for c, v in zip(CONTROLS, step) if getattr(ex, c).value != v]
            assert len(changed) == 1
            text = ex.readout.value
            getattr(ex, changed[0]).value = step[CONTROLS.index(changed[0])]
            assert sorted(log) == expected, (pass_, step, log)
            assert ex.readout.value != text and f"{step[0]}-bit {step[1]}" in ex.readout.value
