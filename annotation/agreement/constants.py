"""Constants shared by the agreement modules: reasons for undefined statistics, chunk sizes (part of annotation.agreement; contracts in its docstring)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval", "ratio")
Id = int | str

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
I64Array = npt.NDArray[np.int64]

REASON_NO_PAIRABLE = "no unit has two or more ratings, so no pair of ratings can be compared"
REASON_NO_VARIATION = "no variation: every pairable rating has the same value, alpha is 0/0"
REASON_NO_DEFINED_RESAMPLE = "no bootstrap resample gave a defined alpha"
CONDITIONAL_DESIGN_WARNING = (
    "alpha is biased by the conditional design itself: another rater was added only while all "
    "earlier raters said yes, so which units receive two or more votes depends on the votes; "
    "read alpha together with the vote-pattern table"
)

# Row chunk for the streaming pass over values2d: small enough that temporaries stay in cache.
_ROW_CHUNK_VALUES = 1 << 16
# Upper bound on resample-weight matrix entries held at once (B_chunk * n_units).
_BOOT_CHUNK_ENTRIES = 1 << 23
