import numpy as np
import pytest

from edgelib.quantization import affine_params, dequantize, quantize, symmetric_scales


def test_affine_params_map_the_range_and_keep_zero_exact():
    s, z = affine_params(-1.0, 3.0)
    assert s == pytest.approx(4.0 / 255)
    assert quantize(0.0, s, z) == z  # real zero is exact
    assert dequantize(quantize(-1.0, s, z), s, z) == pytest.approx(-1.0, abs=s / 2)
    assert dequantize(quantize(3.0, s, z), s, z) == pytest.approx(3.0, abs=s / 2)


def test_relu_range_uses_the_lowest_integer_for_zero():
    s, z = affine_params(0.0, 6.0)
    assert z == -128 and s == pytest.approx(6.0 / 255)


def test_round_trip_error_is_at_most_half_a_step(rng):
    r = rng.uniform(-2, 5, 10_000)
    s, z = affine_params(r.min(), r.max())
    err = np.abs(dequantize(quantize(r, s, z), s, z) - r)
    assert err.max() <= s / 2 + 1e-12


def test_symmetric_per_channel_scales(rng):
    w = rng.normal(size=(3, 3, 4, 8))
    s = symmetric_scales(w, axis=-1)
    assert s.shape == (8,)
    q = quantize(w, s, 0)
    assert np.abs(q).max() == 127 and q.min() >= -127


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="rmin must be <= rmax"):
        affine_params(2.0, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        affine_params(np.nan, 1.0)
    with pytest.raises(ValueError, match="scale must be > 0"):
        quantize([1.0], 0.0, 0)
    with pytest.raises(ValueError, match="NaN"):
        quantize([np.nan], 1.0, 0)
    with pytest.raises(ValueError, match="at least one axis"):
        symmetric_scales(1.0)


def test_quantize_multiplier_known_values():
    from edgelib.quantization import quantize_multiplier
    assert quantize_multiplier(0.5) == (2**30, 0)
    assert quantize_multiplier(0.75) == (3 * 2**29, 0)
    assert quantize_multiplier(0.25) == (2**30, 1)
    assert quantize_multiplier(0.1) == (round(0.8 * 2**31), 3)   # 0.1 = 0.8 * 2**-3
    assert quantize_multiplier(1.0) == (2**30, -1)
    # a fraction that rounds up to 1.0 carries into the exponent
    assert quantize_multiplier(1 - 2**-40) == (2**30, -1)


def test_quantize_multiplier_round_trip(rng):
    from edgelib.quantization import quantize_multiplier
    m = 10 ** rng.uniform(-6, 0.5, 1000)
    m0, n = quantize_multiplier(m)
    assert m0.shape == n.shape == m.shape
    assert m0.min() >= 2**30 and m0.max() < 2**31
    back = m0 * 2.0 ** (-31 - n)
    assert np.max(np.abs(back - m) / m) <= 2**-31


def test_multiply_by_quantized_multiplier_rounds_to_nearest(rng):
    from edgelib.quantization import multiply_by_quantized_multiplier, quantize_multiplier
    assert multiply_by_quantized_multiplier(np.array([100, 3, 1000]), 2**30, 0).tolist() == \
        [50, 2, 500]
    assert multiply_by_quantized_multiplier(np.array([-1000, 1000]), 2**30, 2).tolist() == \
        [-125, 125]
    acc = rng.integers(-2**20, 2**20, 20_000)
    for m in (3.7e-4, 0.0123, 0.3, 0.99, 1.7):
        m0, n = quantize_multiplier(m)
        exact = acc * (m0 * 2.0 ** (-31 - n))
        got = multiply_by_quantized_multiplier(acc, m0, n)
        # two roundings: the first (to 32 bits) is off by up to half a unit of 2**-n of
        # the result, so the total is off by at most 0.5 + 0.5 * 2**-n, never by 1
        assert np.max(np.abs(got - exact)) <= 0.5 + 0.5 * 2.0 ** -max(n, 0) + 1e-9
        if n >= 6:  # small multipliers (the usual case): nearly always the nearest integer
            assert np.mean(got == np.round(exact)) > 0.99


def test_requantize_per_channel_clamp_and_relu():
    from edgelib.quantization import quantize_multiplier, requantize
    m0, n = quantize_multiplier(np.array([0.5, 0.25]))
    acc = np.array([[10, 10], [-400, 400], [1000, -8]])
    q = requantize(acc, m0, n, zero_point=-128)
    assert q.dtype == np.int32
    assert q.tolist() == [[-123, -125], [-128, -28], [127, -128]]
    relu = requantize(np.array([-30, 30]), *quantize_multiplier(0.5), zero_point=-10,
                      qmin=-10)   # a fused ReLU clamps at the zero point
    assert relu.tolist() == [-10, 5]


def test_requantization_bad_input():
    from edgelib.quantization import (
        multiply_by_quantized_multiplier,
        quantize_multiplier,
        requantize,
    )
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="finite and > 0"):
            quantize_multiplier(bad)
    with pytest.raises(ValueError, match="outside the range"):
        quantize_multiplier(2.0**40)
    with pytest.raises(TypeError, match="integer array"):
        multiply_by_quantized_multiplier(np.array([1.5]), 2**30, 0)
    with pytest.raises(ValueError, match="M0"):
        multiply_by_quantized_multiplier(np.array([1]), 2**31, 0)
    with pytest.raises(ValueError, match="qmin must be <= qmax"):
        requantize(np.array([1]), 2**30, 0, 0, qmin=5, qmax=4)
