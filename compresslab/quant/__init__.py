"""Quantization: from the number line to integer-only inference.

The one formula behind linear (uniform) quantization::

    q     = clamp(round(x / scale) + zero_point, qmin, qmax)      # float -> integer
    x_hat = (q - zero_point) * scale                              # integer -> float

``round`` rounds half to even; ``scale`` is the step between two neighbouring levels and
``zero_point`` the integer that represents the real number 0 exactly (Jacob et al. 2018 CVPR,
eq. 1). One topic per module:

* :mod:`~compresslab.quant.grid`: ``QParams`` (scale, zero point, integer range), ``qrange``;
* :mod:`~compresslab.quant.linear`: ``quantize``, ``dequantize``, ``fake_quantize`` and
  ``scale_zero_point`` (the range -> scale, zero point formulas);
* :mod:`~compresslab.quant.observers`: choosing the range (min-max, moving average,
  percentile, MSE search) and ``qparams`` = observer + formula;
* :mod:`~compresslab.quant.metrics`: SQNR, MSE, max error;
* :mod:`~compresslab.quant.sharing`: k-means weight sharing (Deep Compression);
* :mod:`~compresslab.quant.binary`: binary (XNOR-Net) and ternary (TWN) weights;
* :mod:`~compresslab.quant.training`: quantization-aware training, fake quantization with the
  straight-through estimator;
* :mod:`~compresslab.quant.ptq`: post-training quantization of a whole model;
* :mod:`~compresslab.quant.integer`: integer-only inference (requantization, ``IntegerLinear``).

Language models (lesson 06), weight-only and per layer unless said otherwise:

* :mod:`~compresslab.quant.groups`: round to nearest in groups of input channels, real bit
  packing (``quantize_groups``, ``GroupQuant``, ``rtn``, ``pack_bits``);
* :mod:`~compresslab.quant.gguf`: llama.cpp's block formats Q8_0, Q4_0, Q4_1 and ``.gguf`` files;
* :mod:`~compresslab.quant.gptq`: GPTQ, error feedback through the inverse Hessian
  (``gptq.gptq``, ``hessian``);
* :mod:`~compresslab.quant.awq`: AWQ, activation-aware per-channel scales (``awq.awq``, ``awq_search``);
* :mod:`~compresslab.quant.smoothquant`: SmoothQuant for int8 weights *and* activations (W8A8);
* :mod:`~compresslab.quant.llm`: one of these over every Linear of a GPT (``quantize_gpt``).

Agreement with PyTorch (``tests/test_quant.py``, ``tests/test_quant_kernels.py``):
``quantize(x, qp, rounding="torch")`` returns exactly the integers of
``torch.quantize_per_tensor`` / ``torch.quantize_per_channel``, ties included; the default
``rounding="divide"`` is the formula above, which differs from torch only within a float32
rounding of a tie (torch multiplies by ``float32(1 / scale)``; see ``quantize``'s Notes).
``qparams(..., observer="minmax")`` equals ``torch.ao.quantization.MinMaxObserver`` and
``PerChannelMinMaxObserver`` to the last bit.

References
----------
* B. Jacob, S. Kligys, B. Chen, M. Zhu, M. Tang, A. Howard, H. Adam, D. Kalenichenko.
  "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
  Inference." CVPR 2018.
* R. Krishnamoorthi. "Quantizing deep convolutional networks for efficient inference:
  A whitepaper." arXiv:1806.08342, 2018.
* S. Han, H. Mao, W. J. Dally. "Deep Compression: Compressing Deep Neural Networks with
  Pruning, Trained Quantization and Huffman Coding." ICLR 2016.
* M. Rastegari, V. Ordonez, J. Redmon, A. Farhadi. "XNOR-Net: ImageNet Classification Using
  Binary Convolutional Neural Networks." ECCV 2016.
* F. Li, B. Zhang, B. Liu. "Ternary Weight Networks." arXiv:1605.04711, 2016.
* E. Frantar, S. Ashkboos, T. Hoefler, D. Alistarh. "GPTQ: Accurate Post-Training Quantization
  for Generative Pre-trained Transformers." ICLR 2023 (arXiv:2210.17323, 2022).
* J. Lin, J. Tang, H. Tang, S. Yang, W.-M. Chen, W.-C. Wang, G. Xiao, X. Dang, C. Gan, S. Han.
  "AWQ: Activation-aware Weight Quantization for LLM Compression and Acceleration." MLSys 2024
  (arXiv:2306.00978, 2023).
* G. Gerganov and contributors. ggml and llama.cpp (software, 2023-), GGUF file format
  specification, ``docs/gguf.md`` of the ggml repository.
* G. Xiao, J. Lin, M. Seznec, H. Wu, J. Demouth, S. Han. "SmoothQuant: Accurate and Efficient
  Post-Training Quantization for Large Language Models." ICML 2023 (arXiv:2211.10438, 2022).
"""
from __future__ import annotations

from .awq import AWQResult, awq_search
from .binary import binarize, ternarize
from .gguf import (
                     GGUF_TYPES,
                     bits_per_weight,
                     export_gpt,
                     gguf_dequantize,
                     gguf_quantize,
                     import_gpt,
                     read_gguf,
                     write_gguf,
)
from .gptq import hessian
from .grid import QParams, qrange
from .groups import GroupQuant, pack_bits, quantize_groups, rtn, unpack_bits
from .integer import IntegerLinear, quantize_multiplier, requantize
from .linear import (
                     DEFAULT_ROUNDING,
                     ROUNDINGS,
                     SCHEMES,
                     TORCH_ROUNDING,
                     dequantize,
                     fake_quantize,
                     quantize,
                     scale_zero_point,
                     torch_rounding,
)
from .llm import METHODS as LLM_METHODS
from .llm import CompressedGPT, calibration_windows, layer_output_error, quantize_gpt
from .metrics import max_abs_error, mse, sqnr
from .observers import (
                     OBSERVERS,
                     minmax_range,
                     moving_average_range,
                     mse_range,
                     observe_range,
                     percentile_range,
                     qparams,
)
from .ptq import QuantizedModel, model_size, quantize_model
from .sharing import (
                     SharedWeights,
                     finetune_codebooks,
                     kmeans,
                     kmeans_centroid_grad,
                     kmeans_quantize_model,
                     kmeans_reconstruct,
)
from .smoothquant import outlier_ratio, smooth, smooth_scales, w8a8_matmul
from .training import FakeQuant, qat

__all__ = [
    "QParams", "qrange", "scale_zero_point", "qparams", "observe_range", "minmax_range",
    "moving_average_range", "percentile_range", "mse_range", "quantize", "dequantize",
    "fake_quantize", "sqnr", "mse", "max_abs_error", "OBSERVERS", "SCHEMES", "ROUNDINGS",
    "DEFAULT_ROUNDING", "TORCH_ROUNDING", "torch_rounding",
    "kmeans", "kmeans_reconstruct", "kmeans_centroid_grad", "SharedWeights",
    "kmeans_quantize_model", "finetune_codebooks",
    "binarize", "ternarize", "FakeQuant", "qat", "quantize_model", "QuantizedModel",
    "quantize_multiplier", "requantize", "IntegerLinear", "model_size",
    "GroupQuant", "quantize_groups", "rtn", "pack_bits", "unpack_bits", "hessian", "AWQResult", "awq_search",
    "smooth_scales", "smooth", "w8a8_matmul", "outlier_ratio", "LLM_METHODS", "CompressedGPT",
    "calibration_windows", "layer_output_error", "quantize_gpt",
    "GGUF_TYPES", "bits_per_weight", "gguf_quantize", "gguf_dequantize", "write_gguf", "read_gguf", "export_gpt",
    "import_gpt",
]
