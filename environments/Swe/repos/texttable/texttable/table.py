"""The Table class: rows of cells laid out in aligned columns, rendered as text."""

from .cells import ALIGNMENTS, display_width, format_number, pad, truncate, wrap
from .csvtext import parse_csv, write_csv

STYLES = ("grid", "plain", "markdown")


class Table:
    """A table with a header row and any number of data rows.

    ``align`` gives one alignment per column ("left", "right" or "center"); by default
    numeric columns are right-aligned and all others left-aligned. ``max_width`` limits
    every column to that many columns of text: longer cells are wrapped onto several lines
    (``overflow="wrap"``) or cut with an ellipsis (``overflow="truncate"``).
    """

    def __init__(self, headers, align=None, max_width=None, overflow="wrap", decimals=None):
        if not headers:
            raise ValueError("a table needs at least one column")
        self.headers = [str(h) for h in headers]
        if align is not None and len(align) != len(self.headers):
            raise ValueError("expected %d alignments, got %d" % (len(self.headers), len(align)))
        if align is not None:
            for a in align:
                if a not in ALIGNMENTS:
                    raise ValueError("unknown alignment %r" % (a,))
        if max_width is not None and max_width < 1:
            raise ValueError("max_width must be at least 1")
        if overflow not in ("wrap", "truncate"):
            raise ValueError("overflow must be 'wrap' or 'truncate'")
        self.align = list(align) if align is not None else None
        self.max_width = max_width
        self.overflow = overflow
        self.decimals = decimals
        self.rows = []

    def add_row(self, row):
        """Append one row; it must have exactly one value per column."""
        row = list(row)
        if len(row) != len(self.headers):
            raise ValueError("row %d has %d values, expected %d" % (len(self.rows) + 1, len(row), len(self.headers)))
        self.rows.append(row)
        return self

    def add_rows(self, rows):
        """Append several rows."""
        for row in rows:
            self.add_row(row)
        return self

    def __len__(self):
        return len(self.rows)

    def column(self, index):
        """Return the values of one column, by position or header name."""
        if isinstance(index, str):
            if index not in self.headers:
                raise KeyError("no column named %r" % (index,))
            index = self.headers.index(index)
        return [row[index] for row in self.rows]

    def sort_by(self, column, reverse=False):
        """Sort rows in place by one column (position or header name); None sorts last."""
        values = self.column(column)
        order = sorted(range(len(values)), key=lambda i: (values[i] is None, values[i]))
        if reverse:
            present = [i for i in order if values[i] is not None]
            missing = [i for i in order if values[i] is None]
            order = present[::-1] + missing
        self.rows = [self.rows[i] for i in order]
        return self

    def format_cell(self, value):
        """Turn one value into the text shown in its cell."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, (int, float)):
            return format_number(value, self.decimals if isinstance(value, float) else None)
        return str(value)

    def is_numeric_column(self, index):
        """True when every non-empty value of the column is a number (booleans are not)."""
        values = [row[index] for row in self.rows if row[index] is not None]
        if not values:
            return False
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)

    def alignments(self):
        """Return the alignment used for each column."""
        if self.align is not None:
            return list(self.align)
        return ["right" if self.is_numeric_column(i) else "left" for i in range(len(self.headers))]

    def cell_lines(self, text):
        """Split a cell's text into the lines it is shown on, honouring ``max_width``."""
        if self.max_width is None:
            return text.split("\n")
        if self.overflow == "truncate":
            return [truncate(line, self.max_width) for line in text.split("\n")]
        return wrap(text, self.max_width)

    def layout(self):
        """Return (header lines, row lines, widths): every cell split into its lines."""
        header_cells = [self.cell_lines(h) for h in self.headers]
        body = [[self.cell_lines(self.format_cell(v)) for v in row] for row in self.rows]
        widths = []
        for i in range(len(self.headers)):
            cells = [header_cells[i]] + [r[i] for r in body]
            widths.append(max(display_width(line) for cell in cells for line in cell))
        return header_cells, body, widths

    def column_widths(self):
        """Return the width of each column in terminal columns."""
        return self.layout()[2]

    def render(self, style="grid"):
        """Render the table as text in one of the styles "grid", "plain" or "markdown"."""
        if style not in STYLES:
            raise ValueError("unknown style %r, expected one of %s" % (style, ", ".join(STYLES)))
        header_cells, body, widths = self.layout()
        aligns = self.alignments()
        if style == "markdown":
            return self.render_markdown(header_cells, body, widths, aligns)
        if style == "plain":
            out = self.render_lines(header_cells, widths, aligns, "", "  ", "")
            for cells in body:
                out.extend(self.render_lines(cells, widths, aligns, "", "  ", ""))
            return "\n".join(line.rstrip() for line in out)
        border = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
        out = [border]
        out.extend(self.render_lines(header_cells, widths, aligns, "| ", " | ", " |", header=True))
        out.append(border.replace("-", "="))
        for cells in body:
            out.extend(self.render_lines(cells, widths, aligns, "| ", " | ", " |"))
        if body:
            out.append(border)
        return "\n".join(out)

    def render_lines(self, cells, widths, aligns, left, sep, right, header=False):
        """Render one row, whose cells may span several lines, as a list of text lines."""
        height = max(len(c) for c in cells)
        lines = []
        for k in range(height):
            parts = []
            for i, cell in enumerate(cells):
                text = cell[k] if k < len(cell) else ""
                parts.append(pad(text, widths[i], "center" if header else aligns[i]))
            lines.append(left + sep.join(parts) + right)
        return lines

    def render_markdown(self, header_cells, body, widths, aligns):
        """Render as a GitHub-flavoured markdown table; line breaks in cells become <br>."""
        widths = [max(w, 3) for w in widths]

        def one_line(cell):
            return "<br>".join(cell)

        def row_text(cells):
            parts = [pad(one_line(c).replace("|", "\\|"), widths[i], aligns[i]) for i, c in enumerate(cells)]
            return "| " + " | ".join(parts) + " |"

        rule = []
        for i, w in enumerate(widths):
            if aligns[i] == "right":
                rule.append("-" * (w - 1) + ":")
            elif aligns[i] == "center":
                rule.append(":" + "-" * (w - 2) + ":")
            else:
                rule.append("-" * w)
        out = [row_text(header_cells), "| " + " | ".join(rule) + " |"]
        out.extend(row_text(cells) for cells in body)
        return "\n".join(out)

    def to_csv(self):
        """Write the header and rows as CSV text."""
        return write_csv([self.headers] + [[self.format_cell(v) for v in row] for row in self.rows])

    @classmethod
    def from_csv(cls, text, convert_numbers=True, **options):
        """Build a table from CSV text whose first row is the header.

        With ``convert_numbers`` fields that look like integers or decimals become numbers
        and empty fields become None.
        """
        rows = parse_csv(text)
        if not rows:
            raise ValueError("CSV text has no header row")
        table = cls(rows[0], **options)
        for row in rows[1:]:
            if convert_numbers:
                row = [convert_field(v) for v in row]
            table.add_row(row)
        return table


def convert_field(text):
    """Convert a CSV field to an int, a float, None (empty) or leave it as text."""
    stripped = text.strip()
    if stripped == "":
        return None
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        return float(stripped)
    except ValueError:
        return text
