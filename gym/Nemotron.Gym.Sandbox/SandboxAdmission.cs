using System.Diagnostics;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Sandbox;

/// <summary>Counters of a <see cref="SandboxAdmission"/> at one moment.</summary>
/// <param name="Running">Runs and sessions holding a place now (sandboxes alive).</param>
/// <param name="Waiting">Callers queued for a place.</param>
/// <param name="Refused">Calls refused because the queue was full or the wait too long.</param>
/// <param name="QueueWaitTotal">Time admitted calls spent queued, summed.</param>
/// <param name="QueueWaitMax">The longest wait of an admitted call.</param>
/// <param name="Admitted">Calls admitted.</param>
/// <param name="RunTimeTotal">Wall time of finished one-shot runs and commands, summed.</param>
/// <param name="Outcomes">Finished runs and commands by outcome.</param>
public sealed record SandboxAdmissionMetrics(int Running, int Waiting, long Refused, TimeSpan QueueWaitTotal, TimeSpan QueueWaitMax,
    long Admitted, TimeSpan RunTimeTotal, IReadOnlyDictionary<SandboxOutcome, long> Outcomes);

/// <summary>
/// Admission control in front of a backend, as a host (a silo) runs it: at most <c>concurrency</c>
/// sandboxes at once, at most <c>queueCapacity</c> callers waiting, and none waiting longer than
/// <c>waitTimeout</c>. A call that is not admitted gets a <see cref="SandboxOutcome.SandboxError"/>
/// saying so (an infrastructure failure the caller may retry or mask, never a grade of the program).
/// A session holds its place until it is disposed. It is itself an <see cref="ISandboxService"/>, so
/// environments cannot tell it from the backend.
/// </summary>
public sealed class SandboxAdmission : ISandboxService
{
    private readonly ISandboxService inner;
    private readonly SemaphoreSlim places;
    private readonly int queueCapacity;
    private readonly TimeSpan waitTimeout;
    private readonly object gate = new();
    private readonly Dictionary<SandboxOutcome, long> outcomes = [];
    private int running, waiting;
    private long refused, admitted;
    private TimeSpan waitTotal, waitMax, runTotal;

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    public SandboxAdmission(ISandboxService inner, int concurrency, int queueCapacity, TimeSpan waitTimeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(concurrency, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(queueCapacity);
        this.inner = inner;
        places = new SemaphoreSlim(concurrency, concurrency);
        this.queueCapacity = queueCapacity;
        this.waitTimeout = waitTimeout;
        Concurrency = concurrency;
    }

    /// <summary>
    /// A concurrency for this machine: two sandboxes per core, no more than the memory available allows
    /// at <paramref name="memoryPerSandbox"/> each (half the memory kept for everything else).
    /// </summary>
    public static int ConcurrencyFor(long memoryPerSandbox)
    {
        var available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        var byMemory = (int)Math.Max(1, available / 2 / Math.Max(1, memoryPerSandbox));
        return Math.Max(1, Math.Min(Environment.ProcessorCount * 2, byMemory));
    }

    /// <summary>Sandboxes allowed at once.</summary>
    public int Concurrency { get; }

    /// <inheritdoc />
    public string Backend => inner.Backend;

    /// <summary>The counters now.</summary>
    public SandboxAdmissionMetrics Metrics
    {
        get
        {
            lock (gate) return new(running, waiting, refused, waitTotal, waitMax, admitted, runTotal, new Dictionary<SandboxOutcome, long>(outcomes));
        }
    }

    /// <inheritdoc />
    public async ValueTask<SandboxResult> RunAsync(SandboxRunRequest request, CancellationToken cancellation)
    {
        var refusal = await AdmitAsync(cancellation);
        if (refusal is not null) return refusal;
        try
        {
            var result = await inner.RunAsync(request, cancellation);
            Record(result);
            return result;
        }
        finally { Leave(); }
    }

    /// <inheritdoc />
    public async ValueTask<ISandboxSession> OpenSessionAsync(SandboxSessionOptions options, CancellationToken cancellation)
    {
        var refusal = await AdmitAsync(cancellation);
        if (refusal is not null) return new FailedSession(refusal.Detail!);
        try { return new AdmittedSession(this, await inner.OpenSessionAsync(options, cancellation)); }
        catch
        {
            Leave();
            throw;
        }
    }

    /// <summary>Waits for a place; null when admitted, else the refusal to return.</summary>
    private async Task<SandboxResult?> AdmitAsync(CancellationToken cancellation)
    {
        lock (gate)
        {
            // Take a place at once when one is free; queue only when none is.
            if (places.Wait(0)) { Admitted(TimeSpan.Zero); return null; }
            if (waiting >= queueCapacity)
            {
                refused++;
                return SandboxResult.Failure($"sandbox queue full: {running} running, {waiting} waiting (capacity {queueCapacity})");
            }
            waiting++;
        }
        var clock = Stopwatch.StartNew();
        bool entered;
        try { entered = await places.WaitAsync(waitTimeout, cancellation); }
        catch (OperationCanceledException)
        {
            lock (gate) waiting--;
            return new SandboxResult(SandboxOutcome.Killed, null, null, SandboxOutput.Empty, SandboxOutput.Empty, clock.Elapsed, null, null, "cancelled while queued for a sandbox");
        }
        lock (gate)
        {
            waiting--;
            if (!entered)
            {
                refused++;
                return SandboxResult.Failure($"no sandbox free within {waitTimeout.TotalSeconds:0.###} s ({running} running)", clock.Elapsed);
            }
            Admitted(clock.Elapsed);
        }
        return null;
    }

    // Called under the gate.
    private void Admitted(TimeSpan waited)
    {
        running++;
        admitted++;
        waitTotal += waited;
        if (waited > waitMax) waitMax = waited;
    }

    private void Leave()
    {
        lock (gate) running--;
        places.Release();
    }

    private void Record(SandboxResult result)
    {
        lock (gate)
        {
            outcomes[result.Outcome] = outcomes.GetValueOrDefault(result.Outcome) + 1;
            runTotal += result.WallTime;
        }
    }

    /// <summary>A session that gives its place back when disposed, and counts its commands' outcomes.</summary>
    private sealed class AdmittedSession(SandboxAdmission owner, ISandboxSession inner) : ISandboxSession
    {
        private int disposed;

        public async ValueTask<SandboxResult> ExecAsync(SandboxCommand command, CancellationToken cancellation)
        {
            var result = await inner.ExecAsync(command, cancellation);
            owner.Record(result);
            return result;
        }

        public ValueTask<SandboxStatus> PutFilesAsync(IReadOnlyList<SandboxFile> files, CancellationToken cancellation) => inner.PutFilesAsync(files, cancellation);
        public ValueTask<SandboxFileRead> GetFileAsync(string path, long maxBytes, CancellationToken cancellation) => inner.GetFileAsync(path, maxBytes, cancellation);
        public ValueTask<SandboxStatus> ResetAsync(CancellationToken cancellation) => inner.ResetAsync(cancellation);

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 1) return;
            try { await inner.DisposeAsync(); }
            finally { owner.Leave(); }
        }
    }
}
