"""IntervalSet: a set of values stored as sorted, disjoint, non-touching intervals."""

from .interval import Interval


def merge(intervals):
    """Merge intervals into a sorted list where no two overlap or touch; empty ones are dropped."""
    ordered = sorted(i for i in intervals if not i.is_empty())
    merged = []
    for interval in ordered:
        if merged and merged[-1].touches(interval):
            merged[-1] = merged[-1].hull(interval)
        else:
            merged.append(interval)
    return merged


class IntervalSet:
    """A set of values given by intervals, kept merged and sorted.

    ``IntervalSet([Interval(1, 3), Interval(2, 5)])`` holds [1, 5). Sets are immutable:
    the operations return new sets.
    """

    def __init__(self, intervals=()):
        self.intervals = tuple(merge(intervals))

    @classmethod
    def from_pairs(cls, pairs):
        """Build a set from (start, end) pairs."""
        return cls(Interval(a, b) for a, b in pairs)

    def __iter__(self):
        return iter(self.intervals)

    def __len__(self):
        return len(self.intervals)

    def __bool__(self):
        return bool(self.intervals)

    def __eq__(self, other):
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return self.intervals == other.intervals

    def __repr__(self):
        return "IntervalSet(%s)" % ", ".join("[%r, %r)" % (i.start, i.end) for i in self.intervals)

    def pairs(self):
        """The intervals as a list of (start, end) tuples."""
        return [(i.start, i.end) for i in self.intervals]

    def contains(self, value):
        """True when ``value`` lies in one of the intervals (binary search)."""
        lo, hi = 0, len(self.intervals)
        while lo < hi:
            mid = (lo + hi) // 2
            interval = self.intervals[mid]
            if value < interval.start:
                hi = mid
            elif value >= interval.end:
                lo = mid + 1
            else:
                return True
        return False

    def total_length(self):
        """The summed length of all intervals (0 for an empty set)."""
        total = 0
        for interval in self.intervals:
            total += interval.length
        return total

    def union(self, other):
        """Values in either set."""
        return IntervalSet(self.intervals + tuple(other))

    def intersection(self, other):
        """Values in both sets (a merge walk over the two sorted lists)."""
        result = []
        a, b = self.intervals, tuple(other)
        i = j = 0
        while i < len(a) and j < len(b):
            common = a[i].intersection(b[j])
            if common is not None:
                result.append(common)
            if a[i].end < b[j].end:
                i += 1
            else:
                j += 1
        return IntervalSet(result)

    def difference(self, other):
        """Values in this set but not in ``other``."""
        remaining = list(self.intervals)
        for cut in other:
            next_remaining = []
            for interval in remaining:
                next_remaining.extend(interval.subtract(cut))
            remaining = next_remaining
        return IntervalSet(remaining)

    def gaps(self, within=None):
        """The holes between intervals; with ``within``, also the uncovered ends of that interval."""
        if within is None:
            if not self.intervals:
                return IntervalSet()
            within = Interval(self.intervals[0].start, self.intervals[-1].end)
        return IntervalSet([within]).difference(self)

    def span(self):
        """The interval from the first start to the last end, or None for an empty set."""
        if not self.intervals:
            return None
        return Interval(self.intervals[0].start, self.intervals[-1].end)

    def largest(self, count=1):
        """The ``count`` longest intervals, longest first; ties keep their order in the set."""
        ranked = sorted(self.intervals, key=lambda i: i.length, reverse=True)
        return ranked[:count]
