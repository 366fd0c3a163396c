"""Helpers that work on a single cell: measuring, padding, truncating and wrapping text.

Widths are measured in terminal columns, not characters: East Asian wide and full-width
characters take two columns, combining marks take none.
"""

import unicodedata

ALIGNMENTS = ("left", "right", "center")


def char_width(ch):
    """Return how many terminal columns one character occupies (0, 1 or 2)."""
    if unicodedata.combining(ch):
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    return 1


def display_width(text):
    """Return the number of terminal columns ``text`` occupies on one line."""
    return sum(char_width(ch) for ch in text)


def pad(text, width, align="left", fill=" "):
    """Pad ``text`` with ``fill`` to ``width`` columns.

    ``align`` is one of "left", "right" or "center". When the space cannot be split evenly
    for centered text, the extra column goes to the right. Text already wider than ``width``
    is returned unchanged.
    """
    if align not in ALIGNMENTS:
        raise ValueError("unknown alignment %r, expected one of %s" % (align, ", ".join(ALIGNMENTS)))
    if len(fill) != 1:
        raise ValueError("fill must be a single character")
    missing = width - display_width(text)
    if missing <= 0:
        return text
    if align == "left":
        return text + fill * missing
    if align == "right":
        return fill * missing + text
    left = missing // 2
    right = missing - left
    return fill * left + text + fill * right


def truncate(text, width, ellipsis="..."):
    """Shorten ``text`` to at most ``width`` columns, ending it with ``ellipsis`` when cut."""
    if width < 0:
        raise ValueError("width must not be negative")
    if display_width(text) <= width:
        return text
    if display_width(ellipsis) >= width:
        return ellipsis[:width]
    budget = width - display_width(ellipsis)
    kept = []
    used = 0
    for ch in text:
        w = char_width(ch)
        if used + w > budget:
            break
        kept.append(ch)
        used += w
    return "".join(kept) + ellipsis


def split_long_word(word, width):
    """Cut one word into pieces of at most ``width`` columns."""
    pieces = []
    current = ""
    for ch in word:
        if display_width(current) + char_width(ch) > width and current:
            pieces.append(current)
            current = ""
        current += ch
    if current:
        pieces.append(current)
    return pieces


def wrap(text, width):
    """Wrap ``text`` into lines of at most ``width`` columns.

    Words are separated by whitespace; a word longer than ``width`` is split across lines.
    Existing line breaks are kept. An empty text gives one empty line.
    """
    if width < 1:
        raise ValueError("width must be at least 1")
    lines = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split():
            for piece in split_long_word(word, width):
                if not current:
                    current = piece
                elif display_width(current) + 1 + display_width(piece) <= width:
                    current = current + " " + piece
                else:
                    lines.append(current)
                    current = piece
        lines.append(current)
    return lines


def format_number(value, decimals=None, thousands=False):
    """Format a number for a table cell.

    ``decimals`` fixes the number of digits after the point (rounding half to even, as
    Python does); ``thousands`` inserts commas between groups of three digits.
    Integers stay integers when ``decimals`` is None.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("format_number expects an int or a float, got %s" % type(value).__name__)
    if decimals is not None and decimals < 0:
        raise ValueError("decimals must not be negative")
    if decimals is None:
        text = str(value)
    else:
        text = "%.*f" % (decimals, value)
    if not thousands:
        return text
    sign = ""
    if text.startswith("-"):
        sign = "-"
        text = text[1:]
    whole, dot, fraction = text.partition(".")
    groups = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    return sign + ",".join(groups) + dot + fraction
