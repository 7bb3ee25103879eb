"""Checks of exercises whose code, shown in the notebook, would give the answer away.

An exercise's check cell calls these, so the learner sees a verdict and a hint
that names the slip, not the computation of the right answer. Chapter 00:
the int8 weight bytes and the activation memory of a chain of layers, and the
stage of the pipeline whose memory first holds a model.
"""

from __future__ import annotations

from edgelib import measure
from edgelib.checks import check

KIB, GIB = 1024, 1024**3
EDGE_DEVICE_FLASH, EDGE_DEVICE_RAM, EDGE_SERVER_MEMORY = 256 * KIB, 64 * KIB, 8 * GIB


def check_int8_weight_bytes(weights: int, keras_model, name: str) -> None:
    """Check a learner's int8 weight bytes of `keras_model`; the hint names a known slip."""
    params, truth = keras_model.count_params(), measure.weight_bytes(keras_model, "int8")
    biases = (truth - params) // 3  # a bias takes 4 bytes, a kernel weight 1
    slips = {params: "int8 keeps each bias in 4 bytes (int32), not 1",
             4 * params: "4 bytes per parameter is float32; int8 stores 1 byte per kernel weight",
             params - biases: "the biases are stored too, 4 bytes each"}
    right = weights == truth
    check(right, f"the weight bytes of {name}",
          hint="" if right else slips.get(weights, "1 byte per kernel weight, 4 per bias, "
                                                   "over every layer with weights"))


def int8_needs_verdict(name: str, got: tuple, keras_model) -> tuple:
    """A learner's (weight bytes, activation bytes) of an int8 chain of layers against the
    model's own: ((weights, peak), "", "") if right, else ("", what is wrong, hint)."""
    params = keras_model.count_params()
    largest = max(r["output_elements"] for r in measure.layer_costs(keras_model))
    peak = measure.chain_activation_peak(keras_model, 1)
    weights = measure.weight_bytes(keras_model, "int8")
    slips = {params: "int8 keeps its biases in int32, 4 bytes each",
             4 * params: "int8 stores 1 byte per kernel weight, not 4",
             largest: "a layer's input and output are alive at the same time: add them",
             4 * peak: "an int8 model stores 1 byte per activation value, not 4"}
    if got[0] != weights:
        return "", f"the weight bytes of {name}", slips.get(got[0], "kernels 1 byte, biases 4")
    if got[1] != peak:
        return "", f"the activation bytes of {name}", slips.get(
            got[1], "the largest sum of one layer's input and output, 1 byte per value")
    return (weights, peak), "", ""


def stages_that_hold(weights: int, activations: int) -> list[str]:
    """The stages whose memory holds a model, nearest the sensor first (chapter 00's
    edge device: weights in flash, activations in RAM; edge server: one memory)."""
    return [stage for stage, holds in (
        ("edge device", weights <= EDGE_DEVICE_FLASH and activations <= EDGE_DEVICE_RAM),
        ("edge server", weights + activations <= EDGE_SERVER_MEMORY),
        ("cloud", True)) if holds]
