"""Calendar helpers: month arithmetic, business days, ISO weeks, quarters and durations."""

import datetime
import re

DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
DURATION_UNITS = (("w", 7 * 24 * 3600), ("d", 24 * 3600), ("h", 3600), ("m", 60), ("s", 1))
DURATION_PATTERN = re.compile(r"(\d+)([wdhms])")


def is_leap_year(year):
    """True for Gregorian leap years: every fourth year, except centuries not divisible by 400."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year, month):
    """The number of days in ``month`` (1-12) of ``year``."""
    if not 1 <= month <= 12:
        raise ValueError("month must be in 1..12, got %r" % (month,))
    if month == 2 and is_leap_year(year):
        return 29
    return DAYS_IN_MONTH[month - 1]


def add_months(date, months):
    """Move ``date`` by whole months; a day past the end of the new month is clamped to its last day."""
    index = date.year * 12 + (date.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(date.day, days_in_month(year, month))
    return datetime.date(year, month, day)


def is_business_day(date, holidays=()):
    """True for Monday to Friday dates that are not in ``holidays``."""
    return date.weekday() < 5 and date not in holidays


def business_days_between(start, end, holidays=()):
    """Count business days in [start, end): ``start`` counts, ``end`` does not.

    When ``end`` is before ``start`` the count is negative, as if the two were swapped.
    """
    if end < start:
        return -business_days_between(end, start, holidays)
    count = 0
    day = start
    while day < end:
        if is_business_day(day, holidays):
            count += 1
        day += datetime.timedelta(days=1)
    return count


def add_business_days(date, days, holidays=()):
    """The date ``days`` business days after ``date`` (before it when negative)."""
    step = 1 if days >= 0 else -1
    remaining = abs(days)
    while remaining > 0:
        date += datetime.timedelta(days=step)
        if is_business_day(date, holidays):
            remaining -= 1
    return date


def iso_week(date):
    """The ISO 8601 (year, week) of ``date``: weeks start on Monday, week 1 holds the year's first Thursday."""
    thursday = date + datetime.timedelta(days=3 - date.weekday())
    first = datetime.date(thursday.year, 1, 1)
    week = (thursday - first).days // 7 + 1
    return thursday.year, week


def quarter(date):
    """The quarter (1-4) that ``date`` falls in."""
    return (date.month - 1) // 3 + 1


def quarter_bounds(year, q):
    """The first day of quarter ``q`` and the first day of the next quarter."""
    if q not in (1, 2, 3, 4):
        raise ValueError("quarter must be 1..4, got %r" % (q,))
    start = datetime.date(year, 3 * (q - 1) + 1, 1)
    return start, add_months(start, 3)


def date_range(start, end, step_days=1):
    """Dates from ``start`` up to but not including ``end``, ``step_days`` apart."""
    if step_days < 1:
        raise ValueError("step_days must be at least 1")
    dates = []
    day = start
    while day < end:
        dates.append(day)
        day += datetime.timedelta(days=step_days)
    return dates


def parse_duration(text):
    """Parse a duration such as "1w2d", "3h30m" or "45s" into seconds.

    Units are w, d, h, m and s, each at most once and from largest to smallest.
    """
    text = text.strip().lower()
    if not text:
        raise ValueError("empty duration")
    position = 0
    total = 0
    last_rank = -1
    ranks = [u for u, _ in DURATION_UNITS]
    for match in DURATION_PATTERN.finditer(text):
        if match.start() != position:
            raise ValueError("unexpected text in duration %r at position %d" % (text, position))
        rank = ranks.index(match.group(2))
        if rank <= last_rank:
            raise ValueError("units out of order or repeated in duration %r" % (text,))
        last_rank = rank
        total += int(match.group(1)) * DURATION_UNITS[rank][1]
        position = match.end()
    if position != len(text):
        raise ValueError("unexpected text in duration %r at position %d" % (text, position))
    return total


def format_duration(seconds):
    """Write a number of seconds in the largest units first, e.g. 93784 -> "1d2h3m4s"; 0 -> "0s"."""
    if seconds < 0:
        raise ValueError("duration must not be negative")
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in DURATION_UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append("%d%s" % (count, unit))
    return "".join(parts)
