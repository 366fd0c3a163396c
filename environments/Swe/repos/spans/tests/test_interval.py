import unittest

from spans import Interval


class IntervalTests(unittest.TestCase):
    def test_length(self):
        self.assertEqual(Interval(2, 7).length, 5)

    def test_end_before_start_rejected(self):
        with self.assertRaises(ValueError):
            Interval(5, 4)

    def test_empty(self):
        self.assertEqual([Interval(3, 3).is_empty(), Interval(3, 4).is_empty()], [True, False])

    def test_contains_start_not_end(self):
        i = Interval(1, 4)
        self.assertEqual([i.contains(0), i.contains(1), i.contains(3), i.contains(4)], [False, True, True, False])

    def test_immutable(self):
        i = Interval(1, 2)
        with self.assertRaises(AttributeError):
            i.start = 0

    def test_equality_and_hash(self):
        self.assertEqual(len({Interval(1, 2), Interval(1, 2), Interval(1, 3)}), 2)

    def test_ordering(self):
        self.assertEqual(sorted([Interval(2, 3), Interval(1, 5), Interval(1, 2)]),
                         [Interval(1, 2), Interval(1, 5), Interval(2, 3)])

    def test_repr(self):
        self.assertEqual(repr(Interval(1, 2.5)), "Interval(1, 2.5)")

    def test_covers(self):
        outer = Interval(0, 10)
        self.assertEqual([outer.covers(Interval(0, 10)), outer.covers(Interval(5, 11)), outer.covers(Interval(20, 20))],
                         [True, False, True])

    def test_overlaps_requires_shared_value(self):
        a = Interval(0, 5)
        self.assertEqual([a.overlaps(Interval(4, 6)), a.overlaps(Interval(5, 6)), a.overlaps(Interval(-3, 1))],
                         [True, False, True])

    def test_touches_when_meeting(self):
        a = Interval(0, 5)
        self.assertEqual([a.touches(Interval(5, 6)), a.touches(Interval(6, 7)), Interval(6, 7).touches(a)],
                         [True, False, False])

    def test_intersection(self):
        self.assertEqual(Interval(0, 5).intersection(Interval(3, 9)), Interval(3, 5))

    def test_intersection_of_disjoint_is_none(self):
        self.assertIsNone(Interval(0, 3).intersection(Interval(3, 9)))

    def test_hull(self):
        self.assertEqual(Interval(5, 6).hull(Interval(1, 2)), Interval(1, 6))

    def test_shift(self):
        self.assertEqual(Interval(1, 3).shift(-4), Interval(-3, -1))

    def test_expand_symmetric(self):
        self.assertEqual(Interval(5, 6).expand(2), Interval(3, 8))

    def test_expand_asymmetric(self):
        self.assertEqual(Interval(5, 6).expand(1, 3), Interval(4, 9))

    def test_split(self):
        self.assertEqual(Interval(0, 10).split(4), (Interval(0, 4), Interval(4, 10)))

    def test_split_outside_rejected(self):
        with self.assertRaises(ValueError):
            Interval(0, 10).split(11)

    def test_subtract_middle(self):
        self.assertEqual(Interval(0, 10).subtract(Interval(3, 5)), [Interval(0, 3), Interval(5, 10)])

    def test_subtract_left_part(self):
        self.assertEqual(Interval(0, 10).subtract(Interval(-5, 4)), [Interval(4, 10)])

    def test_subtract_everything(self):
        self.assertEqual(Interval(2, 4).subtract(Interval(0, 10)), [])

    def test_subtract_disjoint(self):
        self.assertEqual(Interval(2, 4).subtract(Interval(4, 10)), [Interval(2, 4)])

    def test_chunks(self):
        self.assertEqual(Interval(0, 7).chunks(3), [Interval(0, 3), Interval(3, 6), Interval(6, 7)])

    def test_chunks_exact(self):
        self.assertEqual(Interval(0, 4).chunks(2), [Interval(0, 2), Interval(2, 4)])

    def test_chunks_size_checked(self):
        with self.assertRaises(ValueError):
            Interval(0, 4).chunks(0)


if __name__ == "__main__":
    unittest.main()
