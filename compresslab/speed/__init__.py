"""Honest timing: warm-up, repeats, median and spread, threads stated -- and the models that explain it.

A package, one topic a module; every public name is re-exported here, so ``speed.timeit``,
``speed.amdahl``, ``speed.model_cost`` ... work as they read in the lessons:

* :mod:`~compresslab.speed.timing` -- ``timeit``, the one timer every lesson and benchmark uses,
  and ``compare``, which measures several functions interleaved (A B A B ...) and gives each
  speedup (a ratio of two medians from the same run) a bootstrap confidence interval, refusing
  to call a difference a speedup when that interval reaches into the A/A band ``1 +- 5 %``
  ("no practical difference" inside it); thread control; measuring this
  machine (``measure_roofline``, ``thread_scaling``);
* :mod:`~compresslab.speed.cost` -- MACs, FLOPs (= 2 x MACs), parameter and activation bytes per
  layer, and the arithmetic intensity ``I = FLOPs / bytes moved``;
* :mod:`~compresslab.speed.laws` -- the roofline, attainable FLOP/s ``= min(peak, I x bandwidth)``
  (Williams, Waterman & Patterson, CACM 2009); Amdahl's law ``S(n) = 1 / ((1 - p) + p / n)``
  (Amdahl, AFIPS 1967), Gustafson's scaled speedup ``S(n) = (1 - p) + p n`` (Gustafson, CACM
  1988) and the fit of ``p``; the break-even sparsity of a sparse kernel;
* :mod:`~compresslab.speed.energy` -- energy per inference from Horowitz's 45 nm table (ISSCC
  2014): a DRAM read costs ~170 float multiplies;
* :mod:`~compresslab.speed.variants` -- the dense / masked / shrunk / int8 model variants of the
  standard comparison, and what each costs;
* :mod:`~compresslab.speed.gpu` -- the same model on the CPU and a GPU, and the GPU reference
  numbers shipped for machines without one;
* :mod:`~compresslab.speed.lm` -- language-model decoding: KV-cache bytes, the bytes a batch-1
  decode step reads (why it is memory-bound) and torch's int8 weight-only Linear on the CPU.

The standard benchmark behind ``compresslab bench`` is :mod:`compresslab.bench`.
Importing this package needs NumPy only; torch, scipy and tqdm are imported where they are used.
"""
from __future__ import annotations

# Also re-exported: private names that the lesson 04b widgets and the tests use through ``speed``.
from .cost import LayerCost, ModelCost, arithmetic_intensity, layer_costs, model_cost
from .cost import _is_torch_module as _is_torch_module
from .energy import HOROWITZ_45NM_PJ, Energy, inference_energy
from .gpu import GPU_REFERENCE_PATH, cpu_gpu_sweep, load_gpu_reference, mlp_torch
from .laws import Roofline, amdahl, break_even, fit_parallel_fraction, gustafson
from .lm import INT8_KERNELS, decode_bytes_per_token, decode_time_bound, int8_weight_only_linear, kv_cache_bytes
from .timing import (
    AA_BAND,
    Comparison,
    ThreadScaling,
    Timing,
    compare,
    cuda_sync,
    measure_bandwidth,
    measure_peak_flops,
    measure_roofline,
    set_threads,
    thread_info,
    thread_scaling,
    threads,
    timeit,
)
from .timing import _bootstrap_ratio as _bootstrap_ratio
from .variants import _BITS as _BITS
from .variants import _forward as _forward
from .variants import build_variants, hidden_unit_masks, torch_int8, variant_cost

__all__ = [
    "Timing", "timeit", "thread_info", "threads", "set_threads", "cuda_sync",
    "Comparison", "compare", "AA_BAND",
    "HOROWITZ_45NM_PJ", "Energy", "inference_energy",
    "LayerCost", "ModelCost", "layer_costs", "model_cost", "arithmetic_intensity",
    "measure_peak_flops", "measure_bandwidth", "Roofline", "measure_roofline",
    "amdahl", "gustafson", "fit_parallel_fraction", "ThreadScaling", "thread_scaling",
    "mlp_torch", "cpu_gpu_sweep", "load_gpu_reference", "GPU_REFERENCE_PATH",
    "torch_int8", "hidden_unit_masks", "build_variants", "variant_cost", "break_even",
    "INT8_KERNELS", "kv_cache_bytes", "decode_bytes_per_token", "decode_time_bound", "int8_weight_only_linear",
]
