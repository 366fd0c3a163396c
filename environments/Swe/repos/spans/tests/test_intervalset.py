import unittest

from spans import Interval, IntervalSet, merge


class MergeTests(unittest.TestCase):
    def test_overlapping_merge(self):
        self.assertEqual(merge([Interval(1, 3), Interval(2, 5)]), [Interval(1, 5)])

    def test_touching_merge(self):
        self.assertEqual(merge([Interval(3, 4), Interval(1, 3)]), [Interval(1, 4)])

    def test_disjoint_sorted(self):
        self.assertEqual(merge([Interval(5, 6), Interval(1, 2)]), [Interval(1, 2), Interval(5, 6)])

    def test_empty_dropped(self):
        self.assertEqual(merge([Interval(2, 2), Interval(4, 5)]), [Interval(4, 5)])

    def test_contained_interval(self):
        self.assertEqual(merge([Interval(0, 10), Interval(2, 3), Interval(9, 12)]), [Interval(0, 12)])


class IntervalSetTests(unittest.TestCase):
    def test_from_pairs(self):
        self.assertEqual(IntervalSet.from_pairs([(1, 3), (2, 5), (8, 9)]).pairs(), [(1, 5), (8, 9)])

    def test_len_and_bool(self):
        s = IntervalSet.from_pairs([(1, 2), (3, 4)])
        self.assertEqual([len(s), bool(s), bool(IntervalSet())], [2, True, False])

    def test_repr(self):
        self.assertEqual(repr(IntervalSet.from_pairs([(1, 2), (4, 6)])), "IntervalSet([1, 2), [4, 6))")

    def test_contains(self):
        s = IntervalSet.from_pairs([(0, 2), (5, 7), (10, 12)])
        self.assertEqual([s.contains(v) for v in (-1, 0, 1, 2, 5, 6, 7, 11, 12)],
                         [False, True, True, False, True, True, False, True, False])

    def test_total_length(self):
        self.assertEqual(IntervalSet.from_pairs([(0, 2), (5, 8)]).total_length(), 5)

    def test_total_length_empty(self):
        self.assertEqual(IntervalSet().total_length(), 0)

    def test_union(self):
        a = IntervalSet.from_pairs([(0, 2), (6, 8)])
        b = IntervalSet.from_pairs([(1, 3), (8, 9)])
        self.assertEqual(a.union(b).pairs(), [(0, 3), (6, 9)])

    def test_intersection(self):
        a = IntervalSet.from_pairs([(0, 5), (10, 15)])
        b = IntervalSet.from_pairs([(3, 12), (14, 20)])
        self.assertEqual(a.intersection(b).pairs(), [(3, 5), (10, 12), (14, 15)])

    def test_intersection_disjoint(self):
        a = IntervalSet.from_pairs([(0, 1)])
        b = IntervalSet.from_pairs([(1, 2)])
        self.assertEqual(a.intersection(b).pairs(), [])

    def test_difference(self):
        a = IntervalSet.from_pairs([(0, 10), (20, 30)])
        b = IntervalSet.from_pairs([(2, 4), (8, 22)])
        self.assertEqual(a.difference(b).pairs(), [(0, 2), (4, 8), (22, 30)])

    def test_gaps(self):
        s = IntervalSet.from_pairs([(0, 2), (5, 7), (9, 10)])
        self.assertEqual(s.gaps().pairs(), [(2, 5), (7, 9)])

    def test_gaps_within(self):
        s = IntervalSet.from_pairs([(3, 4)])
        self.assertEqual(s.gaps(Interval(0, 10)).pairs(), [(0, 3), (4, 10)])

    def test_gaps_of_empty_set(self):
        self.assertEqual(IntervalSet().gaps().pairs(), [])

    def test_span(self):
        self.assertEqual(IntervalSet.from_pairs([(4, 5), (1, 2)]).span(), Interval(1, 5))

    def test_span_empty(self):
        self.assertIsNone(IntervalSet().span())

    def test_largest(self):
        s = IntervalSet.from_pairs([(0, 1), (3, 7), (10, 14), (20, 22)])
        self.assertEqual(s.largest(2), [Interval(3, 7), Interval(10, 14)])

    def test_equality(self):
        self.assertEqual(IntervalSet.from_pairs([(1, 2), (2, 3)]), IntervalSet.from_pairs([(1, 3)]))


if __name__ == "__main__":
    unittest.main()
