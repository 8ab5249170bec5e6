"""Energy per inference from a cited table: arithmetic is cheap, moving bytes from DRAM is not.

Horowitz (ISSCC 2014) measured what one operation costs in a 45 nm process at 0.9 V; Han et al.
(NeurIPS 2015, Figure 1) put the numbers used for neural networks side by side. A 32-bit read
from off-chip DRAM costs about 640 pJ, 170 times a 32-bit float multiply (3.7 pJ) and 128 times
a read from a small on-chip SRAM (5 pJ): that ratio is why Han et al. compress weights until
they fit on chip. :func:`inference_energy` turns a model's multiply-adds and the bytes it reads
into an estimate with those numbers. It is a model, not a measurement: a real chip's process,
voltage, caches and data reuse change every term.

>>> e = inference_energy(macs=50_000, weight_bytes=200_000)          # the digits MLP, float32
>>> round(e.dram_pj / e.total_pj, 3)                                  # DRAM dominates
0.993
>>> round(inference_energy(macs=50_000, weight_bytes=50_000, arithmetic="int8").total_uj, 2)
8.02
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import _validate as V

__all__ = ["HOROWITZ_45NM_PJ", "Energy", "inference_energy"]

# Picojoules per operation, 45 nm, 0.9 V (Horowitz, ISSCC 2014; Han et al., NeurIPS 2015, Figure 1).
HOROWITZ_45NM_PJ = {
    "int8 add": 0.03,
    "int8 multiply": 0.2,
    "int32 add": 0.1,
    "int32 multiply": 3.1,
    "float16 add": 0.4,
    "float16 multiply": 1.1,
    "float32 add": 0.9,
    "float32 multiply": 3.7,
    "32-bit SRAM read (8 KB cache)": 5.0,
    "32-bit DRAM read": 640.0,
}
# One multiply-add at each precision: int8 products are accumulated in int32 (as int8 kernels do).
_MAC_PJ = {
    "float32": HOROWITZ_45NM_PJ["float32 multiply"] + HOROWITZ_45NM_PJ["float32 add"],
    "float16": HOROWITZ_45NM_PJ["float16 multiply"] + HOROWITZ_45NM_PJ["float16 add"],
    "int8": HOROWITZ_45NM_PJ["int8 multiply"] + HOROWITZ_45NM_PJ["int32 add"],
}


@dataclass(frozen=True)
class Energy:
    """An energy estimate in picojoules, by term.

    Parameters
    ----------
    arithmetic_pj : float
        The multiply-adds.
    dram_pj : float
        The weights read from off-chip DRAM.
    sram_pj : float
        The activations read and written in on-chip SRAM.

    Examples
    --------
    >>> e = Energy(arithmetic_pj=4.6, dram_pj=640.0, sram_pj=0.0)
    >>> e.total_pj, round(e.total_uj, 7)
    (644.6, 0.0006446)
    """

    arithmetic_pj: float
    dram_pj: float
    sram_pj: float

    @property
    def total_pj(self) -> float:
        return self.arithmetic_pj + self.dram_pj + self.sram_pj

    @property
    def total_uj(self) -> float:
        return self.total_pj / 1e6


def inference_energy(macs: float, weight_bytes: float, *, arithmetic: str = "float32",
                     activation_bytes: float = 0.0) -> Energy:
    """Estimated energy of one inference:
    ``E = macs * E_mac + weight_bytes / 4 * E_DRAM + activation_bytes / 4 * E_SRAM``.

    Every weight byte comes from DRAM once (batch 1: no reuse, the weights do not stay on chip),
    activations stay in on-chip SRAM, and each multiply-add costs one multiply and one add at
    ``arithmetic`` precision (int8 accumulates in int32). Numbers: :data:`HOROWITZ_45NM_PJ`.

    Parameters
    ----------
    macs : float >= 0
        Multiply-adds done (count only the non-zero weights if the kernel skips zeros).
    weight_bytes : float >= 0
        Bytes of weights read from DRAM: the stored size when the chip decodes the compressed
        format itself (as EIE does, Han et al. ISCA 2016), else the size the runtime holds.
    arithmetic : {"float32", "float16", "int8"}
        Precision of the multiply-adds.
    activation_bytes : float >= 0
        Bytes of activations read and written in SRAM.

    Returns
    -------
    Energy
        ``arithmetic_pj``, ``dram_pj``, ``sram_pj`` and their ``total_pj`` / ``total_uj``.

    Examples
    --------
    >>> inference_energy(macs=1, weight_bytes=4).total_pj      # one float32 MAC, one DRAM word
    644.6
    """
    for value, name in ((macs, "macs"), (weight_bytes, "weight_bytes"), (activation_bytes, "activation_bytes")):
        V.check_float(value, name, 0, float("inf"))
    if arithmetic not in _MAC_PJ:
        raise ValueError(f"arithmetic must be one of {sorted(_MAC_PJ)}, got {arithmetic!r}")
    word = 4  # the table's memory energies are per 32-bit word
    return Energy(arithmetic_pj=macs * _MAC_PJ[arithmetic],
                  dram_pj=weight_bytes / word * HOROWITZ_45NM_PJ["32-bit DRAM read"],
                  sram_pj=activation_bytes / word * HOROWITZ_45NM_PJ["32-bit SRAM read (8 KB cache)"])
