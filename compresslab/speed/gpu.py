"""CPU vs GPU: the same torch model timed on both, and the reference numbers measured on a GPU.

``cpu_gpu_sweep`` times a model on the CPU and on a CUDA device for several batch sizes,
synchronised so that the *work* is timed, not its launch, with and without the host<->device
copies. Where there is no GPU, ``load_gpu_reference`` reads the numbers that
``benchmarks/gpu_reference.py`` measured on a real one (``GPU_REFERENCE_PATH``), or gives None:
nothing is ever made up.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
from typing import Sequence

from .. import _validate as V
from .timing import _threads_ctx, _tqdm, cuda_sync, timeit

__all__ = ["mlp_torch", "cpu_gpu_sweep", "load_gpu_reference", "GPU_REFERENCE_PATH"]

# compresslab/datasets/gpu_reference.json (this file is compresslab/speed/gpu.py)
GPU_REFERENCE_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                                  "datasets", "gpu_reference.json")


def mlp_torch(sizes: Sequence[int] = (1024, 4096, 4096, 10), seed: int = 0):
    """A torch ReLU MLP in eval mode with the weights of ``compresslab.nn.mlp(sizes, seed=seed)``.

    Parameters
    ----------
    sizes : sequence of int
        Input size, hidden sizes, output size.
    seed : int
        Seed of the weights.

    Returns
    -------
    torch.nn.Sequential
        Linear and ReLU layers, float32, on the CPU, in eval mode.

    See Also
    --------
    compresslab.nn.mlp, compresslab.nn.to_torch

    Examples
    --------
    >>> import torch
    >>> import numpy as np
    >>> from compresslab import nn
    >>> model = mlp_torch((4, 3, 2))
    >>> [tuple(p.shape) for p in model.parameters()], model.training
    ([(3, 4), (3,), (2, 3), (2,)], False)
    >>> np.array_equal(model[0].weight.detach().numpy(), nn.mlp((4, 3, 2)).layers[0].weight)
    True
    """
    from .. import nn
    return nn.to_torch(nn.mlp(tuple(sizes), seed=seed)).eval()


def cpu_gpu_sweep(model, batches: Sequence[int] = (1, 16, 64, 256, 1024), *, device: str = "cuda",
                  repeat: int = 10, cpu_threads: int | None = None, seed: int = 0,
                  progress: bool = False) -> dict:
    """Time a torch model on the CPU and on ``device`` for each batch size.

    For each batch: ``cpu_s`` (model on the CPU), ``device_s`` (input already on the device,
    synchronised with ``torch.cuda.synchronize`` so the *work* is timed, not its launch) and
    ``device_with_transfer_s`` (copy the input to the device, run, copy the output back). The
    model is copied to the device once, outside the timings.

    ``speedup_compute = cpu_s / device_s`` and ``speedup_with_transfer = cpu_s /
    device_with_transfer_s``, each a ratio of two medians (:func:`compresslab.speed.timeit`).

    Parameters
    ----------
    model : torch.nn.Module
        Its first ``nn.Linear`` gives the input size; it is copied, not moved.
    batches : sequence of int >= 1
        Batch sizes.
    device : str
        A torch device, e.g. "cuda", "cuda:1"; "cpu" runs the same steps on the CPU.
    repeat : int
        Timed samples of each measurement.
    cpu_threads : int >= 1 or None
        torch / BLAS threads during the sweep, or None to leave them.
    seed : int
        Seed of the random inputs.
    progress : bool
        Show a progress bar (tqdm, when installed).

    Returns
    -------
    dict
        ``device``, ``device_name``, ``torch`` (version), ``cuda`` (version or None),
        ``cpu_threads``, ``cpu_count``, ``date`` (UTC) and ``rows``: one dict per batch with
        ``batch``, ``cpu_s``, ``device_s``, ``device_with_transfer_s``, ``speedup_compute`` and
        ``speedup_with_transfer``.

    Raises
    ------
    RuntimeError
        When ``device`` is a CUDA device and torch sees no CUDA GPU.

    See Also
    --------
    load_gpu_reference : numbers measured this way on a real GPU.

    Notes
    -----
    Only CUDA devices are synchronised (:func:`compresslab.speed.cuda_sync`); on another
    device the timings would measure launches. Warm-up: 2 calls on the CPU, 3 on the device,
    2 with the transfers. Inputs are standard normal float32 from a seeded ``torch.Generator``.

    Examples
    --------
    >>> import torch
    >>> model = mlp_torch((8, 16, 4))
    >>> result = cpu_gpu_sweep(model, batches=(1, 4), device="cpu", repeat=3)     # runs anywhere
    >>> [row["batch"] for row in result["rows"]], result["device"]
    ([1, 4], 'cpu')
    >>> sorted(result["rows"][0])
    ['batch', 'cpu_s', 'device_s', 'device_with_transfer_s', 'speedup_compute', 'speedup_with_transfer']
    >>> result = cpu_gpu_sweep(model, device="cuda")              # doctest: +SKIP
    """
    import copy

    import torch

    batches = [V.check_int(b, "batches", 1) for b in batches]
    on_cuda = str(device).startswith("cuda")
    if on_cuda and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' but torch sees no CUDA GPU")
    sync = cuda_sync if on_cuda else None
    cpu_model = copy.deepcopy(model).to("cpu").eval()
    dev_model = copy.deepcopy(model).to(device).eval()
    n_in = next(m for m in cpu_model.modules() if isinstance(m, torch.nn.Linear)).in_features
    g = torch.Generator().manual_seed(seed)
    rows = []
    bar = _tqdm(batches, "CPU vs device", progress)
    with torch.inference_mode(), _threads_ctx(cpu_threads):
        for b in bar:
            x = torch.randn(b, n_in, generator=g)
            xd = x.to(device)
            t_cpu = timeit(lambda x=x: cpu_model(x), warmup=2, repeat=repeat)
            t_dev = timeit(lambda xd=xd: dev_model(xd), warmup=3, repeat=repeat, sync=sync)
            t_xfer = timeit(lambda x=x: dev_model(x.to(device)).to("cpu"), warmup=2, repeat=repeat,
                            sync=sync)
            rows.append({"batch": b, "cpu_s": t_cpu.median, "device_s": t_dev.median,
                         "device_with_transfer_s": t_xfer.median,
                         "speedup_compute": t_cpu.median / t_dev.median,
                         "speedup_with_transfer": t_cpu.median / t_xfer.median})
        threads_used = torch.get_num_threads()
    name = torch.cuda.get_device_name() if on_cuda else platform.processor() or "cpu"
    return {"device": str(device), "device_name": name, "torch": torch.__version__,
            "cuda": getattr(torch.version, "cuda", None), "cpu_threads": threads_used,
            "cpu_count": os.cpu_count(),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "rows": rows}


def load_gpu_reference(path: str | os.PathLike | None = None) -> dict | None:
    """The GPU reference numbers measured on a real GPU by ``benchmarks/gpu_reference.py``,
    or None when that file does not exist (nothing is ever made up).

    Parameters
    ----------
    path : str, os.PathLike or None
        The JSON file; default :data:`GPU_REFERENCE_PATH`, shipped in ``compresslab/datasets``.

    Returns
    -------
    dict or None
        The file's contents, with at least ``device_name``, ``torch``, ``date`` and ``rows``
        (the rows of :func:`cpu_gpu_sweep`); None when the file does not exist.

    Raises
    ------
    ValueError
        When the file lacks one of those four keys.

    See Also
    --------
    cpu_gpu_sweep : the measurement, on a machine with a GPU.

    Examples
    --------
    >>> load_gpu_reference("no/such/file.json") is None
    True
    >>> ref = load_gpu_reference()
    >>> ref is None or {"device_name", "torch", "date", "rows"} <= set(ref)
    True
    """
    import json
    path = GPU_REFERENCE_PATH if path is None else os.fspath(path)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        ref = json.load(f)
    for key in ("device_name", "torch", "date", "rows"):
        if key not in ref:
            raise ValueError(f"{path} is not a GPU reference file: missing {key!r}")
    return ref

