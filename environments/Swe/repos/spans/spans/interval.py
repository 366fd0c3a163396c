"""Half-open intervals [start, end) over any ordered values that support subtraction."""


class Interval:
    """The half-open interval [start, end): it holds ``start`` but not ``end``.

    An interval with ``start == end`` is empty. Intervals are immutable and hashable.
    """

    __slots__ = ("start", "end")

    def __init__(self, start, end):
        if end < start:
            raise ValueError("interval end %r is before its start %r" % (end, start))
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    def __setattr__(self, name, value):
        raise AttributeError("Interval is immutable")

    def __repr__(self):
        return "Interval(%r, %r)" % (self.start, self.end)

    def __eq__(self, other):
        if not isinstance(other, Interval):
            return NotImplemented
        return self.start == other.start and self.end == other.end

    def __lt__(self, other):
        return (self.start, self.end) < (other.start, other.end)

    def __hash__(self):
        return hash((self.start, self.end))

    @property
    def length(self):
        """The distance from start to end."""
        return self.end - self.start

    def is_empty(self):
        """True when the interval holds no value."""
        return self.start == self.end

    def contains(self, value):
        """True when ``value`` lies in [start, end)."""
        return self.start <= value < self.end

    def covers(self, other):
        """True when every value of ``other`` is in this interval; an empty one is covered by all."""
        if other.is_empty():
            return True
        return self.start <= other.start and other.end <= self.end

    def overlaps(self, other):
        """True when the two intervals share at least one value."""
        return self.start < other.end and other.start < self.end

    def touches(self, other):
        """True when the intervals overlap or meet end to start, so their union is one interval."""
        return self.start <= other.end and other.start <= self.end

    def intersection(self, other):
        """The values in both intervals, or None when they do not overlap."""
        start = max(self.start, other.start)
        end = min(self.end, other.end)
        if start >= end:
            return None
        return Interval(start, end)

    def hull(self, other):
        """The smallest interval holding both intervals (and any gap between them)."""
        return Interval(min(self.start, other.start), max(self.end, other.end))

    def shift(self, offset):
        """The same interval moved by ``offset``."""
        return Interval(self.start + offset, self.end + offset)

    def expand(self, before, after=None):
        """Grow the interval by ``before`` at the start and ``after`` (default: the same) at the end."""
        if after is None:
            after = before
        return Interval(self.start - before, self.end + after)

    def split(self, at):
        """Split into [start, at) and [at, end); ``at`` must lie within the interval."""
        if not self.start <= at <= self.end:
            raise ValueError("split point %r is outside %r" % (at, self))
        return Interval(self.start, at), Interval(at, self.end)

    def subtract(self, other):
        """The parts of this interval not in ``other``: a list of zero, one or two intervals."""
        if not self.overlaps(other):
            return [] if self.is_empty() else [self]
        parts = []
        if self.start < other.start:
            parts.append(Interval(self.start, other.start))
        if other.end < self.end:
            parts.append(Interval(other.end, self.end))
        return parts

    def chunks(self, size):
        """Cut the interval into consecutive pieces of ``size``; the last may be shorter."""
        if not size > 0:
            raise ValueError("chunk size must be positive")
        pieces = []
        start = self.start
        while start < self.end:
            end = min(start + size, self.end)
            pieces.append(Interval(start, end))
            start = end
        return pieces
