"""CSV formula injection (#16 finding 4): the one rule every CSV of the product applies. PURE.

A spreadsheet (Excel, LibreOffice, Google Sheets) runs a cell that starts with `=`, `+`, `-` or
`@` as a formula, and a leading tab or carriage return can hide such a start; a rater controls
text that lands in CSVs (their display name), and so can whoever names an uploaded file or writes
a prompt. The OWASP rule: a text cell starting with one of those characters (or their full-width
forms, which some spreadsheet locales also read as formulas) gets a leading `'`, which spreadsheets
show as "text" and never evaluate.

Only *text* is neutralised, never a number: the cell's type decides (an int or float is written as
it is, so -1 stays -1), and text that is a plain decimal number ("-1", "-0.25", "+3e-2"; what a
dashboard table holds for a formatted figure) is a number too, since a spreadsheet reads it as
that number and nothing else. "-1+1" or "-cmd|..." are not plain numbers and are neutralised.
Parquet and JSON Lines keep the raw values: only CSV is opened by spreadsheets.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

# Characters that start a formula (OWASP "CSV Injection"), plus the full-width = + - @.
FORMULA_START = "=+-@\t\r\uff1d\uff0b\uff0d\uff20"
# The same as regular expressions (also used by the Arrow kernels of annotation.exporters.text).
FORMULA_START_RE = "^[=+\\-@\\t\\r\uff1d\uff0b\uff0d\uff20]"
PLAIN_NUMBER_RE = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"
_PLAIN_NUMBER = re.compile(PLAIN_NUMBER_RE)
PREFIX = "'"


def csv_text_safe(text: str) -> str:
    """`text` as a CSV cell that no spreadsheet evaluates (see the module docstring)."""
    if text and text[0] in FORMULA_START and not _PLAIN_NUMBER.match(text):
        return PREFIX + text
    return text


def csv_cell_safe(value: Any) -> Any:
    """A cell value for csv.writer: numbers (int, float, Decimal, bool) and None unchanged; anything
    else is written as its text, so it goes through csv_text_safe as text (a dict, a lazy string
    or a date whose text could start a formula is no exception)."""
    if value is None or isinstance(value, int | float | Decimal):
        return value
    return csv_text_safe(value if isinstance(value, str) else str(value))
