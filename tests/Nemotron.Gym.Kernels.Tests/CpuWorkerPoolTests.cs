using Nemotron.Gym.Kernels.Cpu;

namespace Nemotron.Gym.Kernels.Tests;

/// <summary>
/// The CPU backend's own threads: every item runs exactly once, on more than one thread when there is work; a
/// loop inside a loop and loops from two threads at once run correctly (alone); a failing item's exception reaches
/// the caller; helpers that ended after idling come back.
/// </summary>
public class CpuWorkerPoolTests
{
    [Fact]
    public void Every_item_runs_exactly_once_over_many_loops()
    {
        using var pool = new CpuWorkerPool(3);
        for (int round = 0; round < 2000; round++)
        {
            int count = 1 + round % 37;
            var hits = new int[count];
            pool.For(count, i => Interlocked.Increment(ref hits[i]));
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void Long_items_are_shared_between_threads()
    {
        using var pool = new CpuWorkerPool(2);
        var threads = new HashSet<int>();
        for (int round = 0; round < 20 && threads.Count < 2; round++)
            pool.For(8, _ =>
            {
                lock (threads) threads.Add(Environment.CurrentManagedThreadId);
                Thread.Sleep(2); // long enough that the helper, awake or woken, takes items too
            });
        Assert.Equal(2, threads.Count);
    }

    [Fact]
    public void A_loop_inside_a_loop_runs_inline_and_completes()
    {
        using var pool = new CpuWorkerPool(2);
        var hits = new int[16 * 16];
        pool.For(16, i => pool.For(16, j => Interlocked.Increment(ref hits[i * 16 + j])));
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void Loops_from_two_threads_at_once_both_complete()
    {
        using var pool = new CpuWorkerPool(2);
        long[] sums = new long[2];
        Parallel.For(0, 2, t =>
        {
            for (int round = 0; round < 300; round++)
                pool.For(50, i => Interlocked.Add(ref sums[t], i));
        });
        Assert.Equal(300L * (49 * 50 / 2), sums[0]);
        Assert.Equal(300L * (49 * 50 / 2), sums[1]);
    }

    [Fact]
    public void An_items_exception_reaches_the_caller_and_the_pool_still_works()
    {
        using var pool = new CpuWorkerPool(2);
        var e = Assert.Throws<InvalidOperationException>(() => pool.For(100, i =>
        {
            if (i == 37) throw new InvalidOperationException("item 37");
        }));
        Assert.Equal("item 37", e.Message);
        var hits = new int[100];
        pool.For(100, i => Interlocked.Increment(ref hits[i]));
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void Helpers_that_ended_after_idling_are_started_again()
    {
        using var pool = new CpuWorkerPool(2);
        var first = new HashSet<int>();
        pool.For(8, _ => { lock (first) first.Add(Environment.CurrentManagedThreadId); Thread.Sleep(2); });
        Thread.Sleep(CpuWorkerPool.IdleExitMilliseconds + 1000); // the helper ends
        var threads = new HashSet<int>();
        for (int round = 0; round < 20 && threads.Count < 2; round++)
            pool.For(8, _ => { lock (threads) threads.Add(Environment.CurrentManagedThreadId); Thread.Sleep(2); });
        Assert.Equal(2, threads.Count);
    }

    [Fact]
    public void A_disposed_pool_still_runs_loops_on_the_callers_thread()
    {
        var pool = new CpuWorkerPool(2);
        pool.Dispose();
        var hits = new int[10];
        pool.For(10, i => hits[i]++);
        Assert.All(hits, h => Assert.Equal(1, h));
    }
}
