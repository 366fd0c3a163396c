using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Nemotron.Gym.Kernels.Cpu;

/// <summary>
/// The CPU backend's own threads for its parallel loops: Threads − 1 helpers that stay hot between operations, and the
/// calling thread, which takes items too. A training step runs about 150 parallel loops of 0.1–5 ms each, with serial
/// work between them. Through <see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/> each loop queued a
/// task to the shared thread pool and woke a pool thread, and idle pool threads spun on the cores the serial work
/// needed (a fifth of a 2-core pretraining run's samples were the pool's spin-wait; docs: kernels/…/Cpu/PERF.md).
/// Here a helper spins for <see cref="SpinMicroseconds"/> after each loop, so the next one starts at once, and then
/// sleeps on an event until work comes.
///
/// One loop runs at a time: a loop started while another runs (a second thread using the same backend, or a loop
/// inside a loop's body) runs on its own thread alone, which is always correct, only not parallel.
/// </summary>
internal sealed class CpuWorkerPool : IDisposable
{
    /// <summary>How long a helper keeps looking for the next loop before it sleeps.</summary>
    public const int SpinMicroseconds = 50;

    private static readonly long SpinTicks = Stopwatch.Frequency * SpinMicroseconds / 1_000_000;

    /// <summary>How long a helper sleeps without work before its thread ends (a backend nobody disposes leaves no threads behind).</summary>
    public const int IdleExitMilliseconds = 2000;

    private readonly int _helperCount;
    private int _liveHelpers; // under _sleepGate
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly object _sleepGate = new();
    private Loop? _current; // the loop helpers join; a new object per loop, so a helper that arrives late finds it finished
    private int _generation;
    private int _busy; // 1 while a loop runs
    private int _sleepers;
    private volatile bool _stopping;

    private sealed class Loop(Action<int> body, int count)
    {
        public readonly Action<int> Body = body;
        public readonly int Count = count;
        public int Next;
        public int Pending = count; // items not yet finished
        public Exception? Failure;
    }

    public CpuWorkerPool(int threads)
    {
        Threads = Math.Max(1, threads);
        _helperCount = Threads - 1;
    }

    /// <summary>Starts the helpers that are not running (at the first loop, and after they ended for idleness).</summary>
    private void EnsureHelpers()
    {
        lock (_sleepGate)
        {
            while (_liveHelpers < _helperCount && !_stopping)
            {
                _liveHelpers++;
                new Thread(HelperLoop) { IsBackground = true, Name = "cpu-backend" }.Start();
            }
        }
    }

    /// <summary>Threads a loop runs on, the caller's included.</summary>
    public int Threads { get; }

    /// <summary>Runs body(i) for i in [0, count) on the pool's threads and the caller's; returns when all are done.</summary>
    public void For(int count, Action<int> body)
    {
        if (count <= 0) return;
        if (count == 1 || _helperCount == 0 || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        try
        {
            if (Volatile.Read(ref _liveHelpers) < _helperCount) EnsureHelpers();
            var loop = new Loop(body, count);
            Volatile.Write(ref _current, loop);
            // A full fence between posting and reading _sleepers: a helper announces its sleep, then checks _generation.
            Interlocked.Increment(ref _generation);
            if (Volatile.Read(ref _sleepers) > 0)
                lock (_sleepGate) _wake.Set();
            Work(loop);
            // The items still running are on helpers (the wait is at most one item long).
            var spin = new SpinWait();
            while (Volatile.Read(ref loop.Pending) > 0) spin.SpinOnce(sleep1Threshold: -1);
            Volatile.Write(ref _current, null);
            if (loop.Failure is { } failure) ExceptionDispatchInfo.Capture(failure).Throw();
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    private static void Work(Loop loop)
    {
        for (int i = Interlocked.Increment(ref loop.Next) - 1; i < loop.Count; i = Interlocked.Increment(ref loop.Next) - 1)
        {
            // After a failure the remaining items are only counted off, so the caller's wait ends and it rethrows.
            if (Volatile.Read(ref loop.Failure) == null)
            {
                try { loop.Body(i); }
                catch (Exception e) { Interlocked.CompareExchange(ref loop.Failure, e, null); }
            }
            Interlocked.Decrement(ref loop.Pending);
        }
    }

    private void HelperLoop()
    {
        int seen = Volatile.Read(ref _generation);
        while (true)
        {
            // Spin a little for the next loop; then sleep until one is posted.
            long until = Stopwatch.GetTimestamp() + SpinTicks;
            while (Volatile.Read(ref _generation) == seen && !_stopping && Stopwatch.GetTimestamp() < until) Thread.SpinWait(20);
            if (Volatile.Read(ref _generation) == seen && !_stopping)
            {
                lock (_sleepGate)
                {
                    _sleepers++;
                    _wake.Reset();
                }
                // Checked again after announcing the sleep: a loop posted after this check sees _sleepers > 0 and sets the event.
                bool woken = Volatile.Read(ref _generation) != seen || _stopping || _wake.Wait(IdleExitMilliseconds);
                lock (_sleepGate)
                {
                    _sleepers--;
                    if (!woken && Volatile.Read(ref _generation) == seen)
                    {
                        _liveHelpers--; // idle for long: end; the next loop starts a helper again
                        return;
                    }
                }
                continue;
            }
            if (_stopping) return;
            seen = Volatile.Read(ref _generation);
            if (Volatile.Read(ref _current) is { } loop) Work(loop);
        }
    }

    public void Dispose()
    {
        _stopping = true;
        lock (_sleepGate) _wake.Set();
    }
}
