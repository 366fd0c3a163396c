import datetime
import unittest

from spans import (add_business_days, add_months, business_days_between, date_range, days_in_month,
                   format_duration, is_leap_year, iso_week, parse_duration, quarter, quarter_bounds)

D = datetime.date


class CalendarTests(unittest.TestCase):
    def test_leap_years(self):
        self.assertEqual([is_leap_year(y) for y in (1900, 2000, 2023, 2024)], [False, True, False, True])

    def test_days_in_month(self):
        self.assertEqual([days_in_month(2023, 2), days_in_month(2024, 2), days_in_month(2024, 4), days_in_month(2024, 12)],
                         [28, 29, 30, 31])

    def test_days_in_month_rejects_13(self):
        with self.assertRaises(ValueError):
            days_in_month(2024, 13)

    def test_add_months_simple(self):
        self.assertEqual(add_months(D(2024, 1, 15), 2), D(2024, 3, 15))

    def test_add_months_clamps_day(self):
        self.assertEqual(add_months(D(2024, 1, 31), 1), D(2024, 2, 29))

    def test_add_months_across_year(self):
        self.assertEqual(add_months(D(2023, 11, 30), 3), D(2024, 2, 29))

    def test_add_months_backwards(self):
        self.assertEqual(add_months(D(2024, 3, 31), -13), D(2023, 2, 28))

    def test_business_days_week(self):
        self.assertEqual(business_days_between(D(2024, 6, 3), D(2024, 6, 10)), 5)

    def test_business_days_end_excluded(self):
        self.assertEqual(business_days_between(D(2024, 6, 3), D(2024, 6, 4)), 1)

    def test_business_days_with_holiday(self):
        self.assertEqual(business_days_between(D(2024, 6, 3), D(2024, 6, 10), holidays={D(2024, 6, 5)}), 4)

    def test_business_days_reversed_is_negative(self):
        self.assertEqual(business_days_between(D(2024, 6, 10), D(2024, 6, 3)), -5)

    def test_add_business_days_skips_weekend(self):
        self.assertEqual(add_business_days(D(2024, 6, 7), 1), D(2024, 6, 10))

    def test_add_business_days_backwards(self):
        self.assertEqual(add_business_days(D(2024, 6, 10), -2), D(2024, 6, 6))

    def test_add_zero_business_days(self):
        self.assertEqual(add_business_days(D(2024, 6, 8), 0), D(2024, 6, 8))

    def test_iso_week_matches_standard_library(self):
        days = [D(2020, 12, 31), D(2021, 1, 3), D(2021, 1, 4), D(2024, 12, 30), D(2026, 6, 15)]
        self.assertEqual([iso_week(d) for d in days], [tuple(d.isocalendar())[:2] for d in days])

    def test_iso_week_year_boundary(self):
        self.assertEqual(iso_week(D(2027, 1, 1)), (2026, 53))

    def test_quarter(self):
        self.assertEqual([quarter(D(2024, m, 1)) for m in (1, 3, 4, 6, 7, 12)], [1, 1, 2, 2, 3, 4])

    def test_quarter_bounds(self):
        self.assertEqual(quarter_bounds(2024, 4), (D(2024, 10, 1), D(2025, 1, 1)))

    def test_quarter_bounds_rejects_5(self):
        with self.assertRaises(ValueError):
            quarter_bounds(2024, 5)

    def test_date_range(self):
        self.assertEqual(date_range(D(2024, 2, 27), D(2024, 3, 2)),
                         [D(2024, 2, 27), D(2024, 2, 28), D(2024, 2, 29), D(2024, 3, 1)])

    def test_date_range_step(self):
        self.assertEqual(date_range(D(2024, 1, 1), D(2024, 1, 8), step_days=3),
                         [D(2024, 1, 1), D(2024, 1, 4), D(2024, 1, 7)])

    def test_date_range_step_checked(self):
        with self.assertRaises(ValueError):
            date_range(D(2024, 1, 1), D(2024, 1, 8), step_days=0)


class DurationTests(unittest.TestCase):
    def test_parse_all_units(self):
        self.assertEqual(parse_duration("1w2d3h4m5s"), 788645)

    def test_parse_minutes(self):
        self.assertEqual(parse_duration("90m"), 5400)

    def test_parse_ignores_case_and_spaces(self):
        self.assertEqual(parse_duration(" 2H "), 7200)

    def test_parse_rejects_order(self):
        with self.assertRaises(ValueError):
            parse_duration("5m1h")

    def test_parse_rejects_repeat(self):
        with self.assertRaises(ValueError):
            parse_duration("1h1h")

    def test_parse_rejects_junk(self):
        with self.assertRaises(ValueError):
            parse_duration("1h and 5m")

    def test_parse_rejects_empty(self):
        with self.assertRaises(ValueError):
            parse_duration("  ")

    def test_format(self):
        self.assertEqual(format_duration(93784), "1d2h3m4s")

    def test_format_weeks(self):
        self.assertEqual(format_duration(8 * 86400 + 60), "1w1d1m")

    def test_format_zero(self):
        self.assertEqual(format_duration(0), "0s")

    def test_format_rejects_negative(self):
        with self.assertRaises(ValueError):
            format_duration(-1)

    def test_round_trip(self):
        self.assertEqual(parse_duration(format_duration(1234567)), 1234567)


if __name__ == "__main__":
    unittest.main()
