import pytest

from edgelib import grading, measure
from edgelib.checks import ExerciseCheckFailed


def test_int8_weight_bytes_check_names_the_slip(tiny_digits_model):
    model, _ = tiny_digits_model
    right = measure.weight_bytes(model, "int8")
    grading.check_int8_weight_bytes(right, model, "the model")
    with pytest.raises(ExerciseCheckFailed, match="4 bytes .int32., not 1"):
        grading.check_int8_weight_bytes(model.count_params(), model, "the model")
    with pytest.raises(ExerciseCheckFailed, match="float32"):
        grading.check_int8_weight_bytes(4 * model.count_params(), model, "the model")


def test_int8_needs_verdict_and_stages(tiny_digits_model):
    model, _ = tiny_digits_model
    figures = (measure.weight_bytes(model, "int8"), measure.chain_activation_peak(model, 1))
    assert grading.int8_needs_verdict("m", figures, model) == (figures, "", "")
    largest = max(r["output_elements"] for r in measure.layer_costs(model))
    _, what, hint = grading.int8_needs_verdict("m", (figures[0], largest), model)
    assert what == "the activation bytes of m" and "alive at the same time" in hint
    assert grading.stages_that_hold(*figures) == ["edge device", "edge server", "cloud"]
    assert grading.stages_that_hold(14 * 10**9, 0) == ["cloud"]
