"""Atmospheric CO2 at Mauna Loa, weekly, from the statsmodels wheel."""

from __future__ import annotations

import numpy as np

from ._core import Dataset, Split, register

# Chronological split: the model is always tested on the future.
TRAIN_END = "1990-12-31"
VAL_END = "1995-12-31"


@register("co2", "weekly Mauna Loa CO2 (ppm) 1958-2001, shipped in the statsmodels wheel")
def load_co2() -> Dataset:
    """Weekly atmospheric CO2 concentration (ppm) at Mauna Loa, 1958-03 to 2001-12.

    Source: `statsmodels.datasets.co2` (NOAA / Scripps measurements, the
    series used in statsmodels' documentation), 2,284 weeks. The 59 missing
    weeks are filled by linear interpolation in time.
    Split (chronological): train up to 1990, validation 1991-1995,
    test 1996-2001.
    x: float32 (N,) ppm; t: datetime64[D] week stamps; y: None.
    License: public domain (US government data), as distributed by statsmodels.
    """
    import statsmodels.api as sm

    frame = sm.datasets.co2.load_pandas().data
    series = frame["co2"].interpolate(method="time")
    values = series.to_numpy(dtype=np.float32)
    stamps = series.index.to_numpy().astype("datetime64[D]")
    is_train = stamps <= np.datetime64(TRAIN_END)
    is_val = (stamps > np.datetime64(TRAIN_END)) & (stamps <= np.datetime64(VAL_END))
    is_test = stamps > np.datetime64(VAL_END)
    return Dataset(
        name="co2",
        train=Split(values[is_train], t=stamps[is_train]),
        val=Split(values[is_val], t=stamps[is_val]),
        test=Split(values[is_test], t=stamps[is_test]),
        description="weekly CO2 concentration at Mauna Loa (ppm), gaps interpolated",
        source="statsmodels.datasets.co2 (NOAA/Scripps Mauna Loa record)",
        license="public domain",
        extra={"unit": "ppm", "period_weeks": 52},
    )
