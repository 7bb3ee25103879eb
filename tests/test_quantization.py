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
