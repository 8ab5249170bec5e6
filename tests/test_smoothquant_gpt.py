"""w8a8_gpt: a whole GPT in W8A8 (int8 weights per channel, int8 activations), with SmoothQuant."""
import numpy as np
import pytest

from compresslab.nn import GPT, GPTConfig
from compresslab.quant import smoothquant as SQ


@pytest.fixture(scope="module")
def model():
    return GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16), seed=1)


@pytest.fixture(scope="module")
def calib():
    return np.random.default_rng(0).integers(0, 256, (3, 16))


def test_smoothing_is_an_identity_in_float(model, calib):
    tokens = calib[:2]
    for alpha in (0.0, 0.5, 0.8, 1.0):
        smoothed = SQ.w8a8_gpt(model, calib, alpha=alpha, act=None)
        scales = [layer.smooth_scale for layer in smoothed.linear_layers().values()]
        assert any(not np.allclose(s, 1) for s in scales)                 # it did smooth something
        np.testing.assert_allclose(smoothed(tokens), model(tokens), rtol=1e-4, atol=1e-4)


def test_each_layer_is_w8a8_matmul_of_its_input(model, calib):
    """Oracle: the per-layer function, on the inputs the quantized model's layers actually see,
    with the scales of smooth_scales on the float model's calibration inputs."""
    q = SQ.w8a8_gpt(model, calib, alpha=0.5, act="per_token")
    float_inputs = model.linear_inputs(calib)
    seen = q.linear_inputs(calib[:1])
    for name, layer in q.linear_layers().items():
        w = model.linear_layers()[name].weight
        part = name.split(".", 2)[2]
        if part in SQ.SMOOTHED_LAYERS:
            s = SQ.smooth_scales(np.abs(float_inputs[name]).max(axis=0), w, 0.5)
        else:
            s = np.ones(w.shape[1], np.float32)
        np.testing.assert_array_equal(layer.smooth_scale, s)
        X = seen[name]
        want = SQ.w8a8_matmul(X / s, w * s, act="per_token") + layer.bias
        np.testing.assert_array_equal(layer.forward(X), want)


def test_per_tensor_closed_form_on_one_layer(model):
    """Closed form: one scale for X (max|X| / 127), one per weight row, integer products."""
    q = SQ.w8a8_gpt(model, act="per_tensor")
    layer = q.linear_layers()["blocks.0.mlp.fc1"]
    X = np.random.default_rng(2).normal(0, 1, (5, 32)).astype(np.float32)
    sx = np.float32(np.abs(X).max() / 127)
    sw = (np.abs(layer.weight).max(axis=1, keepdims=True) / 127).astype(np.float32)
    Xq = np.clip(np.rint(X / np.float64(sx)), -127, 127).astype(np.int64)
    Wq = np.clip(np.rint(layer.weight / sw.astype(np.float64)), -127, 127).astype(np.int64)
    want = (Xq @ Wq.T) * np.float64(sx) * sw.T.astype(np.float64) + layer.bias
    np.testing.assert_allclose(layer.forward(X), want, rtol=1e-6, atol=1e-6)


def test_model_left_unchanged_and_int8_is_close(model, calib):
    before = {k: v.copy() for k, v in model.state_dict().items()}
    q = SQ.w8a8_gpt(model, calib, alpha=0.8)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert type(model.linear_layers()["blocks.0.attn.qkv"]).__name__ == "Linear"
    diff = np.abs(q(calib[:1]) - model(calib[:1])).max()
    assert 0 < diff < 0.1


def test_bad_input(model, calib):
    with pytest.raises(TypeError, match="GPT"):
        SQ.w8a8_gpt("not a model")
    with pytest.raises(ValueError, match="act"):
        SQ.w8a8_gpt(model, act="per_channel")
    with pytest.raises(TypeError, match="act"):
        SQ.w8a8_gpt(model, act=8)
    with pytest.raises(ValueError, match="calibration"):
        SQ.w8a8_gpt(model, alpha=0.5)
    with pytest.raises(ValueError, match="alpha"):
        SQ.w8a8_gpt(model, calib, alpha=1.5)
