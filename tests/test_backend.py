"""compresslab.backend: NumPy in, NumPy out; torch in, torch out on the same device."""
import numpy as np
import pytest

from compresslab import backend


@backend.same_kind
def _double(x, scale=2.0):
    return x * scale, float(np.sum(x))


def test_numpy_passes_through():
    out, total = _double(np.arange(3.0))
    assert isinstance(out, np.ndarray) and total == 3.0


def test_torch_in_torch_out_same_device_and_dtype(torch):
    x = torch.arange(3, dtype=torch.float32)
    out, total = _double(x)
    assert isinstance(out, torch.Tensor) and out.device == x.device and out.dtype == torch.float32
    assert torch.equal(out, x * 2) and total == 3.0
    lst = backend.same_kind(lambda xs: [a + 1 for a in xs])([x, x])
    assert all(isinstance(a, torch.Tensor) for a in lst)


def test_dict_of_tensors_in_dict_of_tensors_out(torch):
    """A state dict {name: tensor} reaches the function as NumPy and comes back as tensors."""
    seen = []

    @backend.same_kind
    def halves(weights):
        seen.extend(type(v) for v in weights.values())
        return {k: v / 2 for k, v in weights.items()}

    x = torch.arange(4.0)
    out = halves({"a": x, "b": 2 * x})
    assert seen == [np.ndarray, np.ndarray] and list(out) == ["a", "b"]
    assert all(isinstance(v, torch.Tensor) and v.device == x.device for v in out.values())
    assert torch.equal(out["b"], x)
    assert isinstance(halves({"a": np.arange(4.0)})["a"], np.ndarray)


@pytest.mark.skipif(not backend.cuda_available(), reason="needs a CUDA device")
def test_cuda_tensors_come_back_on_the_gpu(torch):
    x = torch.arange(4.0, device="cuda")
    out, _ = _double(x)
    assert out.is_cuda


def test_is_torch_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, numpy, compresslab.backend as b; b.is_torch(numpy.zeros(1)); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
