using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// Seconds of CPU time the calling thread has used (Linux CLOCK_THREAD_CPUTIME_ID). On a machine that other
/// work shares, single-threaded timings by this clock leave out the time the thread waited for a core, so
/// two versions of a kernel can be compared one after the other. Elsewhere it falls back to wall time.
/// </summary>
internal static partial class ThreadCpuClock
{
    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    private const int ClockThreadCpuTime = 3;

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>True when the thread clock is available (Linux); otherwise <see cref="Now"/> is wall time.</summary>
    public static bool IsThreadTime { get; } = OperatingSystem.IsLinux() && ClockGetTime(ClockThreadCpuTime, out _) == 0;

    /// <summary>The calling thread's CPU seconds (or wall seconds where unavailable).</summary>
    public static double Now()
    {
        if (IsThreadTime && ClockGetTime(ClockThreadCpuTime, out var t) == 0) return t.Seconds + t.Nanoseconds * 1e-9;
        return Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
    }
}
