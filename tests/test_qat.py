"""edgelib.qat: fake quantization and the STE against TensorFlow, QAT end to end."""

import numpy as np
import pytest

from edgelib import qat


@pytest.mark.parametrize("rmin,rmax,bits", [(-1.0, 3.0, 8), (-0.37, 0.52, 8), (0.0, 6.0, 8),
                                            (-2.0, 0.0, 4), (-0.3, 1.7, 4)])
def test_fake_quant_and_ste_match_tensorflow(rmin, rmax, bits):
    import tensorflow as tf

    x = np.random.default_rng(0).uniform(rmin - 1, rmax + 1, 2000).astype(np.float32)
    x = np.concatenate([x, np.float32([rmin, rmax, 0.0])])
    ref = tf.quantization.fake_quant_with_min_max_vars(x, rmin, rmax, num_bits=bits).numpy()
    np.testing.assert_allclose(qat.fake_quant(x, rmin, rmax, bits), ref, atol=1e-6)
    xv = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xv)
        y = tf.quantization.fake_quant_with_min_max_vars(xv, rmin, rmax, num_bits=bits)
    np.testing.assert_array_equal(tape.gradient(y, xv).numpy(),
                                  qat.ste_gradient(x, rmin, rmax, bits))


def test_nudged_range_keeps_zero_exact():
    nmin, nmax, scale = qat.nudged_range(-1.0, 3.0)
    assert scale == pytest.approx(4 / 255)
    assert nmin / scale == pytest.approx(round(nmin / scale))
    assert qat.fake_quant(np.float32([0.0]), -1.0, 3.0)[0] == 0.0
    assert len(np.unique(qat.fake_quant(np.linspace(-5, 5, 10001), -1.0, 3.0))) == 256


@pytest.mark.parametrize("args,match", [((1.0, 3.0), "contain 0"), ((0.0, 0.0), "contain 0"),
                                        ((-1.0, float("nan")), "finite"),
                                        ((-1.0, "3"), "finite")])
def test_bad_ranges_are_refused(args, match):
    with pytest.raises(qat.QATError, match=match):
        qat.fake_quant([0.5], *args)


def test_bad_bits_and_inputs_are_refused():
    with pytest.raises(qat.QATError, match="num_bits"):
        qat.fake_quant([0.5], -1.0, 1.0, num_bits=1)
    with pytest.raises(qat.QATError, match="finite"):
        qat.fake_quant([np.nan], -1.0, 1.0)
    assert issubclass(qat.QATError, ValueError)


def test_quantize_and_finetune_refuses_bad_input(tiny_digits_model):
    model, x = tiny_digits_model
    with pytest.raises(qat.QATError, match="examples"):
        qat.quantize_and_finetune(model, x, np.zeros(3))
    with pytest.raises(qat.QATError, match="epochs"):
        qat.quantize_and_finetune(model, x, np.zeros(len(x)), epochs=0)
    with pytest.raises(qat.QATError, match="tf_keras"):
        qat.quantize_and_finetune(object(), x, np.zeros(len(x)))
    with pytest.raises(qat.QATError, match="QAT Keras model"):
        qat.activation_ranges(object())


def test_qat_end_to_end_ranges_reach_the_file(tiny_digits_model):
    from edgelib import datasets
    from edgelib.runtime import EdgeModel

    model, x = tiny_digits_model
    y = datasets.load("digits").train.y[:len(x)]
    q_model = qat.quantize_and_finetune(model, x[:128], y[:128], epochs=1)
    ranges = qat.activation_ranges(q_model)
    # Keras numbers layer names per session (quantize_layer, quantize_layer_1, ...)
    assert any(name.startswith("quantize_layer") for name in ranges) and len(ranges) == 4
    edge = EdgeModel(qat.convert_qat(q_model, x[:50]))
    scales = [float(t["scales"][0]) for t in edge.tensors()
              if t["dtype"] == "int8" and t["scales"].size == 1]
    for lo, hi in ranges.values():
        s = qat.nudged_range(min(lo, 0.0), max(hi, 0.0))[2]
        assert any(abs(s - f) <= 1e-6 * s for f in scales)
    keras_pred = q_model.predict(x[:64], verbose=0).argmax(1)
    assert np.mean(edge.predict(x[:64]).argmax(1) == keras_pred) >= 0.9


def test_low_bit_ptq_calibration_and_qat_reach_the_file(tiny_digits_model):
    from edgelib import compression, datasets, tflite
    from edgelib.runtime import EdgeModel

    model, x = tiny_digits_model
    y = datasets.load("digits").train.y[:len(x)]
    ptq = qat.quantize(model, weight_bits=3)
    qat.calibrate(ptq, model, x[:100])
    kernel = model.get_layer("conv2").kernel.numpy()
    found = {w.name.split("/")[-1].split(":")[0]: w.numpy()
             for w in ptq.get_layer("quant_conv2").weights}
    np.testing.assert_allclose(found["kernel_max"], np.abs(kernel).max(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(found["kernel_min"], -found["kernel_max"])
    relu_out = tf_keras_model_output(model, "conv2", x[:100])
    assert found["post_activation_min"] == 0.0
    assert abs(found["post_activation_max"] - relu_out.max()) <= 1e-5 * relu_out.max()
    blob = qat.convert_qat(ptq, x[:50])
    stored = tflite.stored_constants(blob)
    kernels = [v for v in stored.values() if len(v["shape"]) >= 2]
    assert len(kernels) == 3
    assert all(v["type"] == "INT4" and v["bytes"] == -(-int(np.prod(v["shape"])) // 2)
               for v in kernels)
    unpacked = compression.weight_tensors(blob)  # as the interpreter holds them
    assert all(w.dtype == np.int8 and np.unique(w).size <= 7 for w in unpacked.values())
    assert EdgeModel(blob).predict(x[:8]).shape == (8, 10)
    tuned = qat.quantize_and_finetune(model, x[:128], y[:128], epochs=1, weight_bits=3,
                                      cosine_decay=True)
    assert float(tuned.optimizer.learning_rate.numpy()) < 0.5e-3  # decayed from 1e-3
    assert all(v["type"] == "INT8" for v in tflite.stored_constants(
        tflite.convert(model, "int8", representative=x[:50])).values() if len(v["shape"]) >= 2)


def tf_keras_model_output(model, layer: str, x):
    import tf_keras as keras

    return keras.Model(model.inputs, model.get_layer(layer).output).predict(x, verbose=0)


def test_low_bit_helpers_refuse_bad_input(tiny_digits_model):
    model, x = tiny_digits_model
    for bits in (1, 9, 2.5, True):
        with pytest.raises(qat.QATError, match="weight_bits"):
            qat.quantize(model, weight_bits=bits)
    with pytest.raises(qat.QATError, match="tf_keras"):
        qat.quantize(object())
    with pytest.raises(qat.QATError, match="calibration inputs"):
        qat.calibrate(qat.quantize(model, 3), model, np.zeros((0, 28, 28, 1)))
