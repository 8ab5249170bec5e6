"""The model variants of the standard comparison: dense, masked, shrunk, int8, shrunk+int8.

One compresslab MLP, compressed three ways, as torch modules (or as compresslab models without
torch): structured masks that zero hidden units (same shapes, same dense work), the same units
removed (smaller matrices), and torch's int8 kernels (``quantize_dynamic``). ``variant_cost``
counts the MACs and bytes of each with :mod:`compresslab.speed.cost`; lessons 04a/04b, its benchmark
dashboard and ``compresslab bench`` (:mod:`compresslab.bench`) time them.
"""
from __future__ import annotations

from typing import Sequence

from .. import _validate as V
from .. import backend
from .cost import ModelCost, _is_torch_module, model_cost

__all__ = ["torch_int8", "hidden_unit_masks", "build_variants", "variant_cost"]


def _quantized_engine():
    import torch
    engines = torch.backends.quantized.supported_engines
    for e in ("x86", "fbgemm"):
        if e in engines:
            torch.backends.quantized.engine = e
            return e
    return torch.backends.quantized.engine


def torch_int8(model):
    """``torch.ao.quantization.quantize_dynamic`` of every ``nn.Linear`` to int8 (weights int8,
    activations quantized on the fly), on the x86/fbgemm engine: torch's real int8 kernels.

    Parameters
    ----------
    model : torch.nn.Module
        A float32 model; its ``nn.Linear`` layers are quantized, every other layer is kept.

    Returns
    -------
    torch.nn.Module
        A quantized copy; ``model`` itself is left as it was.

    See Also
    --------
    build_variants : the int8 variants of the standard comparison.
    compresslab.quant.quantize : the integer arithmetic, step by step.

    Notes
    -----
    Sets ``torch.backends.quantized.engine`` (for the whole process) to "x86", else "fbgemm",
    when the installed torch supports one; otherwise leaves the engine as it is. torch's
    warnings during the conversion are silenced.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)).eval()
    >>> q = torch_int8(model)
    >>> q[0].weight().dtype, model[0].weight.dtype
    (torch.qint8, torch.float32)
    >>> tuple(q(torch.ones(1, 4)).shape)
    (1, 2)
    """
    import warnings

    import torch
    _quantized_engine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def hidden_unit_masks(model, amount: float = 0.5) -> dict:
    """Structured masks removing ``amount`` of the units (rows, smallest L2 norm) of every
    hidden Linear layer of a compresslab MLP, via :func:`compresslab.prune.structured`.

    Parameters
    ----------
    model : compresslab.nn.Sequential
        An MLP; the last Linear (the outputs) keeps all its units.
    amount : int or float
        Count or fraction of each hidden layer's units to remove.

    Returns
    -------
    dict of str to ndarray
        ``{"<layer index>.weight": mask}``, float32 masks of 0 and 1 shaped like the weights,
        whole rows zeroed; ready for :func:`compresslab.prune.apply_masks`.

    See Also
    --------
    build_variants : the masked and shrunk models built from these.

    Examples
    --------
    >>> from compresslab import nn
    >>> masks = hidden_unit_masks(nn.mlp((4, 6, 6, 2)), amount=0.5)
    >>> sorted(masks)
    ['0.weight', '2.weight']
    >>> masks["0.weight"].shape, int(masks["0.weight"][:, 0].sum())         # 3 of 6 units kept
    ((6, 4), 3)
    """
    from .. import nn, prune
    linears = [i for i, l in enumerate(model.layers) if isinstance(l, nn.Linear)]
    return {f"{i}.weight": prune.structured(model.layers[i].weight, amount, dim=0)
            for i in linears[:-1]}


def build_variants(model=None, *, sizes: Sequence[int] = (1024, 4096, 4096, 10),
                   amount: float = 0.5, seed: int = 0, engine: str = "auto") -> dict:
    """The model variants of the standard comparison, as torch modules in eval mode (or as
    compresslab models with ``engine="numpy"``).

    * ``dense`` -- float32, every unit;
    * ``masked`` -- ``amount`` of the hidden units zeroed (:func:`compresslab.prune.structured` +
      ``apply_masks``): the same shapes, so the same dense kernels and the same work;
    * ``shrunk`` -- those units removed (:func:`compresslab.prune.shrink`): smaller matrices;
    * ``int8`` -- the dense model through torch's int8 kernels (:func:`torch_int8`);
    * ``shrunk+int8`` -- both.

    ``model`` is a compresslab MLP (default: ``nn.mlp(sizes, seed=seed)``). The compresslab
    models are returned too, under ``"numpy"``. ``engine="numpy"`` (the default when torch is
    not installed) returns the compresslab models themselves as ``dense``, ``masked`` and
    ``shrunk``, without the int8 variants, which need torch's kernels.

    Parameters
    ----------
    model : compresslab.nn.Sequential or None
        The dense MLP (used as it is, not copied); None builds ``nn.mlp(sizes, seed=seed)``.
    sizes : sequence of int
        Layer sizes of the default model.
    amount : float in [0, 1)
        Fraction of each hidden layer's units to mask / remove (:func:`hidden_unit_masks`).
    seed : int
        Seed of the default model's weights.
    engine : "auto", "torch" or "numpy"
        "auto" is "torch" when torch is installed, else "numpy".

    Returns
    -------
    dict
        torch: ``dense``, ``masked``, ``shrunk``, ``int8``, ``shrunk+int8`` (torch modules in eval
        mode) and ``numpy``, a dict of the compresslab ``dense``, ``masked`` and ``shrunk`` models.
        numpy: ``dense``, ``masked``, ``shrunk`` and ``numpy``.

    See Also
    --------
    variant_cost : MACs and bytes of each.
    compresslab.bench.standard_benchmark : times them.

    Notes
    -----
    Shrinking is exact: ``shrunk`` computes what ``masked`` computes, with smaller matrices.

    Examples
    --------
    >>> import torch
    >>> v = build_variants(sizes=(8, 16, 16, 4))
    >>> sorted(v)
    ['dense', 'int8', 'masked', 'numpy', 'shrunk', 'shrunk+int8']
    >>> tuple(v["masked"][0].weight.shape), tuple(v["shrunk"][0].weight.shape)   # 8 of 16 units removed
    ((16, 8), (8, 8))
    >>> x = torch.randn(2, 8, generator=torch.Generator().manual_seed(0))
    >>> with torch.inference_mode():
    ...     torch.allclose(v["shrunk"](x), v["masked"](x), atol=1e-5)
    True
    >>> sorted(build_variants(sizes=(8, 16, 16, 4), engine="numpy"))
    ['dense', 'masked', 'numpy', 'shrunk']
    """
    import copy

    from .. import nn, prune
    V.check_float(amount, "amount", 0, 1, high_open=True)
    V.check_choice(engine, "engine", {"auto", "torch", "numpy"})
    dense = nn.mlp(tuple(sizes), seed=seed) if model is None else model
    masked = prune.apply_masks(copy.deepcopy(dense), hidden_unit_masks(dense, amount))
    shrunk = prune.shrink(masked)
    if engine == "numpy" or (engine == "auto" and not backend.torch_available()):
        return {"dense": dense, "masked": masked, "shrunk": shrunk,
                "numpy": {"dense": dense, "masked": masked, "shrunk": shrunk}}
    t = {"dense": nn.to_torch(dense).eval(), "masked": nn.to_torch(masked).eval(),
         "shrunk": nn.to_torch(shrunk).eval()}
    t["int8"] = torch_int8(t["dense"])
    t["shrunk+int8"] = torch_int8(t["shrunk"])
    t["numpy"] = {"dense": dense, "masked": masked, "shrunk": shrunk}
    return t


_BITS = {"dense": 32, "masked": 32, "shrunk": 32, "int8": 8, "shrunk+int8": 8}
# whose outputs each variant should reproduce: shrinking is exact w.r.t. the masked model,
# int8 approximates its float32 model
_REFERENCE = {"dense": "dense", "masked": "dense", "shrunk": "masked", "int8": "dense",
              "shrunk+int8": "shrunk"}


def variant_cost(variants: dict, name: str, batch: int) -> ModelCost:
    """MACs and bytes of one variant of :func:`build_variants` (int8 stores 8-bit weights and
    float32 biases, as torch's dynamic quantization; masked is counted as the dense kernel runs
    it: every zero multiplied).

    :func:`compresslab.speed.cost.model_cost` of the compresslab model under ``variants["numpy"]``
    (shrunk for "shrunk" and "shrunk+int8", masked for "masked", dense otherwise), with 8-bit
    weights for the int8 variants, 32 bits otherwise, and 32-bit activations.

    Parameters
    ----------
    variants : dict
        From :func:`build_variants`, with either engine (only ``variants["numpy"]`` is read).
    name : str
        "dense", "masked", "shrunk", "int8" or "shrunk+int8".
    batch : int >= 1
        Inputs per forward pass.

    Returns
    -------
    ModelCost

    See Also
    --------
    compresslab.speed.cost.model_cost

    Examples
    --------
    Costs need no torch, so a numpy build can count the int8 variants too:

    >>> v = build_variants(sizes=(8, 16, 16, 4), engine="numpy")
    >>> [variant_cost(v, n, batch=1).macs for n in ("dense", "masked", "shrunk", "int8", "shrunk+int8")]
    [448, 448, 160, 448, 160]
    >>> variant_cost(v, "dense", 1).param_bytes, variant_cost(v, "int8", 1).param_bytes
    (1936, 592)
    """
    V.check_choice(name, "name", set(_BITS))
    base = variants["numpy"]["shrunk" if "shrunk" in name else
                             "masked" if name == "masked" else "dense"]
    return model_cost(base, batch, bits=_BITS[name], act_bits=32)


def _forward(m, x):
    """A zero-argument function running model ``m`` on ``x``: a compresslab model as it is, a
    torch module without autograd."""
    if not _is_torch_module(m):
        return lambda: m(x)
    import torch

    def run():
        with torch.inference_mode():
            return m(x)
    return run
