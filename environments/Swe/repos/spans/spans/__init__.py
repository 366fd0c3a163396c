"""spans: half-open intervals, sets of intervals, and calendar arithmetic.

    >>> IntervalSet.from_pairs([(1, 3), (2, 5), (8, 9)]).pairs()
    [(1, 5), (8, 9)]
"""

from .dates import (add_business_days, add_months, business_days_between, date_range, days_in_month,
                    format_duration, is_business_day, is_leap_year, iso_week, parse_duration, quarter,
                    quarter_bounds)
from .interval import Interval
from .intervalset import IntervalSet, merge

__all__ = [
    "Interval", "IntervalSet", "add_business_days", "add_months", "business_days_between", "date_range",
    "days_in_month", "format_duration", "is_business_day", "is_leap_year", "iso_week", "merge",
    "parse_duration", "quarter", "quarter_bounds",
]
