"""Whole-model compression of the shipped GPT: quant.quantize_gpt and prune.prune_gpt apply the per-layer
methods (tested in test_quant_llm.py, test_quant_gguf.py, test_prune_llm.py) to every Linear, count real bytes,
and keep the orderings the papers report on the layers of this model."""
from __future__ import annotations

import numpy as np
import pytest

import compresslab as cl
from compresslab.quant import gguf, groups


@pytest.fixture(scope="module")
def model():
    return cl.nn.load_tiny_gpt()


@pytest.fixture(scope="module")
def calib():
    return cl.quant.calibration_windows(cl.data.load_text().train, n=8, context=128, seed=0)


def linear_weights(m):
    return {n: layer.weight for n, layer in m.linear_layers().items()}


def test_rtn_model_equals_per_layer_rtn_and_counts_packed_bytes(model):
    q = cl.quant.quantize_gpt(model, "rtn", bits=4, group_size=32)
    for name, w in linear_weights(model).items():
        np.testing.assert_array_equal(q.model.linear_layers()[name].weight, groups.rtn(w, 4, 32))
        gq = groups.quantize_groups(w, 4, 32)
        assert q.layer_bytes[name] == sum(a.nbytes for a in gq.packed().values())
    # 4-bit codes + fp16 scale + 4-bit zero per 32 weights
    assert q.bits_per_weight == pytest.approx(4 + 16 / 32 + 4 / 32)
    untouched = {k: v for k, v in model.state_dict().items() if not k.endswith(("qkv.weight", "proj.weight",
                                                                                 "fc1.weight", "fc2.weight"))}
    assert q.other_bytes == sum(v.nbytes for v in untouched.values())
    assert all(np.array_equal(q.model.state_dict()[k], v) for k, v in untouched.items())
    assert all(np.array_equal(model.linear_layers()[n].weight, w) for n, w in linear_weights(model).items())


def test_gguf_model_equals_the_reference_quantizer(model):
    pytest.importorskip("gguf")
    import gguf as ref
    q = cl.quant.quantize_gpt(model, "Q4_0")
    w = model.linear_layers()["blocks.2.mlp.fc2"].weight
    raw = ref.quants.quantize(w, ref.GGMLQuantizationType.Q4_0)
    np.testing.assert_array_equal(q.model.linear_layers()["blocks.2.mlp.fc2"].weight,
                                  ref.quants.dequantize(raw, ref.GGMLQuantizationType.Q4_0))
    assert q.layer_bytes["blocks.2.mlp.fc2"] == raw.nbytes
    assert q.bits_per_weight == pytest.approx(4.5)


def test_exported_gguf_of_the_shipped_model_reads_back_equal(model, tmp_path):
    q = cl.quant.quantize_gpt(model, "Q8_0")
    path = tmp_path / "tiny.gguf"
    gguf.export_gpt(model.state_dict(), model.config, path, "Q8_0")
    state, config = gguf.import_gpt(path)
    assert cl.nn.GPTConfig(**{**config, "layer_norm_eps": 1e-5}) == model.config
    assert config["layer_norm_eps"] == pytest.approx(1e-5)           # GGUF stores it as a float32
    for name, layer in q.model.linear_layers().items():              # the Linear weights: as quantize_gpt's
        np.testing.assert_array_equal(state[f"{name}.weight"], layer.weight)
    # llama.cpp's files quantize the token embedding too; positions, norms and biases stay float32
    tok = model.state_dict()["tok_emb"]
    np.testing.assert_array_equal(state["tok_emb"], gguf.gguf_dequantize(gguf.gguf_quantize(tok, "Q8_0"), "Q8_0"))
    for name in ("pos_emb", "blocks.0.ln1.weight", "blocks.3.mlp.fc2.bias", "ln_f.bias"):
        np.testing.assert_array_equal(state[name], model.state_dict()[name])
    pytest.importorskip("gguf")
    import gguf as ref
    reader = ref.GGUFReader(path)
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["blk.0.attn_qkv.weight"] == "Q8_0" and types["blk.0.attn_norm.weight"] == "F32"


@pytest.mark.parametrize("bits", [4, 3])
def test_gptq_beats_rtn_on_every_layer_of_the_shipped_model(model, calib, bits):
    """Frantar et al.'s claim, layer by layer: lower output error than round-to-nearest on the inputs."""
    g = cl.quant.quantize_gpt(model, "gptq", bits=bits, group_size=128, calibration=calib)
    r = cl.quant.quantize_gpt(model, "rtn", bits=bits, group_size=128, calibration=calib)
    assert set(g.layer_error) == set(model.linear_layers())
    worse = {n: (g.layer_error[n], r.layer_error[n]) for n in g.layer_error if g.layer_error[n] >= r.layer_error[n]}
    assert not worse
    assert g.nbytes == r.nbytes                       # same storage format, different codes


def test_awq_is_never_worse_than_rtn_on_its_calibration(model, calib):
    a = cl.quant.quantize_gpt(model, "awq", bits=3, group_size=128, calibration=calib, n_grid=5)
    r = cl.quant.quantize_gpt(model, "rtn", bits=3, group_size=128, calibration=calib)
    # block 0 sees the same inputs in both (no earlier block was quantized): never worse there
    for n in [n for n in a.layer_error if n.startswith("blocks.0.")]:
        assert a.layer_error[n] <= r.layer_error[n] * (1 + 1e-9)


def test_prune_gpt_masks(model, calib):
    pruned, masks = cl.prune.prune_gpt(model, "wanda", 0.5, calibration=calib)
    for name, mask in masks.items():
        rows = mask.sum(axis=1)
        assert np.all(rows == mask.shape[1] // 2)                       # per output row
        assert np.array_equal(pruned.linear_layers()[name].weight == 0, mask == 0) or \
            np.all(pruned.linear_layers()[name].weight[mask == 0] == 0)
    # block 0: exactly prune.wanda on the float model's inputs
    X = model.linear_inputs(calib)["blocks.0.mlp.fc1"]
    np.testing.assert_array_equal(masks["blocks.0.mlp.fc1"], cl.prune.wanda(model.linear_layers()["blocks.0.mlp.fc1"]
                                                                             .weight, X, 0.5))
    _, m24 = cl.prune.prune_gpt(model, "magnitude", n_m=(2, 4))
    assert all(m.reshape(m.shape[0], -1, 4).sum(-1).min() == 2 for m in m24.values())
    _, mag = cl.prune.prune_gpt(model, "magnitude", 0.5)
    w = model.linear_layers()["blocks.1.attn.qkv"].weight
    np.testing.assert_array_equal(mag["blocks.1.attn.qkv"], cl.prune.magnitude(w, 0.5))
    _, row = cl.prune.prune_gpt(model, "magnitude_per_row", 0.3)
    for name, layer in model.linear_layers().items():                  # the plain per-row loop
        k = round(0.3 * layer.in_features)
        want = np.ones(layer.weight.shape)
        for i, r in enumerate(np.abs(layer.weight)):
            want[i, np.argsort(r, kind="stable")[:k]] = 0
        np.testing.assert_array_equal(row[name], want)


def test_bad_arguments(model):
    with pytest.raises(ValueError, match="calibration"):
        cl.quant.quantize_gpt(model, "gptq")
    with pytest.raises(ValueError, match="method"):
        cl.quant.quantize_gpt(model, "int4")
    with pytest.raises(TypeError, match="GPT"):
        cl.quant.quantize_gpt(cl.nn.mlp((4, 3, 2)), "rtn")
    with pytest.raises(ValueError, match="calibration"):
        cl.prune.prune_gpt(model, "wanda")
