"""texttable: lay out rows of data as aligned text tables (grid, plain or markdown).

    >>> t = Table(["name", "qty"]).add_row(["apple", 3])
    >>> print(t.render("plain"))
    name   qty
    apple    3
"""

from .cells import display_width, format_number, pad, truncate, wrap
from .csvtext import CsvError, parse_csv, write_csv
from .table import Table, convert_field

__all__ = [
    "CsvError", "Table", "convert_field", "display_width", "format_number", "pad",
    "parse_csv", "truncate", "wrap", "write_csv",
]
