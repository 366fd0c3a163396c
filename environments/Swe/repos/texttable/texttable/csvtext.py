"""A small reader and writer for comma-separated text, used to load and save tables.

Fields may be quoted with double quotes; inside quotes a doubled quote stands for one quote
and commas and line breaks are kept as they are.
"""


class CsvError(ValueError):
    """Raised for malformed CSV text; carries the 1-based line number."""

    def __init__(self, message, line):
        super().__init__("line %d: %s" % (line, message))
        self.line = line


def parse_csv(text, delimiter=","):
    """Parse CSV ``text`` into a list of rows (lists of strings).

    A trailing newline does not produce an empty row. An unterminated quoted field raises
    ``CsvError`` naming the line where the field started.
    """
    if len(delimiter) != 1:
        raise ValueError("delimiter must be a single character")
    rows = []
    row = []
    field = []
    in_quotes = False
    quote_line = 0
    line = 1
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if in_quotes:
            if ch == '"':
                if i + 1 < n and text[i + 1] == '"':
                    field.append('"')
                    i += 1
                else:
                    in_quotes = False
            else:
                if ch == "\n":
                    line += 1
                field.append(ch)
        elif ch == '"':
            if field:
                raise CsvError("quote inside an unquoted field", line)
            in_quotes = True
            quote_line = line
        elif ch == delimiter:
            row.append("".join(field))
            field = []
        elif ch == "\n":
            row.append("".join(field))
            rows.append(row)
            row = []
            field = []
            line += 1
        elif ch == "\r":
            pass
        else:
            field.append(ch)
        i += 1
    if in_quotes:
        raise CsvError("unterminated quoted field", quote_line)
    if field or row:
        row.append("".join(field))
        rows.append(row)
    return rows


def quote_field(value, delimiter=","):
    """Quote one field when it holds the delimiter, a quote or a line break."""
    if any(c in value for c in (delimiter, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def write_csv(rows, delimiter=","):
    """Write rows (sequences of values, converted with ``str``) as CSV text ending in a newline."""
    out = []
    for row in rows:
        out.append(delimiter.join(quote_field(str(v), delimiter) for v in row))
    return "\n".join(out) + "\n" if out else ""
