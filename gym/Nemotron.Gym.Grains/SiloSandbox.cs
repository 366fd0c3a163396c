using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Sandbox;

namespace Nemotron.Gym.Grains;

/// <summary>How a silo runs sandboxes for its environments: the run config's <c>sandbox:</c> section.</summary>
/// <param name="Settings">The backend, its limits and admission control.</param>
/// <param name="Required">
/// True when the configuration asked for a sandbox explicitly: a silo that cannot start it (tool missing, engine down,
/// failed health probe) fails to start, naming why. False for the default: the silo starts without one and environments
/// get null (a code environment then hands back grades that are not judged, which the trainer masks).
/// </param>
public sealed record SiloSandboxOptions(SandboxSettings Settings, bool Required);

/// <summary>
/// The sandbox pool of one silo: the configured backend behind admission control (<see cref="SandboxAdmission"/>),
/// started and health-probed when the silo starts, offered to every environment the silo hosts through
/// <see cref="IEnvironmentServices"/>, and disposed (its sandboxes and scratch folders removed) when the silo stops.
/// </summary>
public sealed class SiloSandbox(SiloSandboxOptions options, ILogger<SiloSandbox> log) : IHostedService, IAsyncDisposable
{
    private readonly TaskCompletionSource<SandboxAdmission?> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ISandboxService? _backend;
    private int _started;

    /// <summary>The settings it was built from.</summary>
    public SandboxSettings Settings => options.Settings;

    /// <summary>The pool once started: null when this silo has no sandbox (see <see cref="Unavailable"/>).</summary>
    public Task<SandboxAdmission?> Ready => _ready.Task;

    /// <summary>Why this silo has no sandbox (the backend could not start, or its health probe failed); null when it has one.</summary>
    public string? Unavailable { get; private set; }

    /// <summary>The health probe's result at start (null when the backend did not start).</summary>
    public SandboxCheckRow? Probe { get; private set; }

    /// <summary>Counters of the pool now; null when there is no pool.</summary>
    public SandboxAdmissionMetrics? Metrics => _ready.Task.IsCompletedSuccessfully ? _ready.Task.Result?.Metrics : null;

    /// <summary>
    /// Starts the backend, wraps it in admission control and runs the health probe. With <see cref="SiloSandboxOptions.Required"/>,
    /// a sandbox that cannot start fails the silo's start with the reason.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _started, 1) == 1) { await _ready.Task; return; }
        SandboxAdmission? pool;
        try { (pool, Unavailable) = await StartPoolAsync(cancellationToken); }
        catch (OperationCanceledException)
        {
            _ready.TrySetResult(null);
            throw;
        }
        if (Unavailable is null)
        {
            log.LogInformation("sandbox pool: {Backend}, {Concurrency} at once, queue {Queue}, probe {Probe:0} ms",
                options.Settings.Backend, pool!.Concurrency, options.Settings.QueueCapacity, Probe!.WallTime.TotalMilliseconds);
            _ready.TrySetResult(pool);
            return;
        }
        log.LogWarning("silo without a sandbox: {Reason}", Unavailable);
        await DisposeAsync();
        if (!options.Required)
        {
            _ready.TrySetResult(null);
            return;
        }
        var error = new InvalidOperationException($"sandbox: {Unavailable}");
        _ready.TrySetException(error);
        throw error;
    }

    private async Task<(SandboxAdmission? Pool, string? Unavailable)> StartPoolAsync(CancellationToken cancellation)
    {
        var settings = options.Settings;
        try
        {
            var (backend, error) = await SandboxServices.CreateAsync(settings, cancellation);
            if (backend is null) return (null, $"the {settings.Backend} sandbox backend could not start: {error}");
            _backend = backend;
            var pool = new SandboxAdmission(backend, settings.EffectiveConcurrency, settings.QueueCapacity, settings.QueueWait);
            // The probe goes through the pool so that its run is counted like any other.
            Probe = await SandboxCheck.ProbeAsync(pool, cancellation);
            return Probe.Passed ? (pool, null) : (null, $"the {settings.Backend} sandbox failed its health probe ({Probe.Name}: got {Probe.Got})");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return (null, $"the {settings.Backend} sandbox backend could not start: {e.Message}");
        }
    }

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken) => DisposeAsync().AsTask();

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        var backend = Interlocked.Exchange(ref _backend, null);
        if (backend is not null) await SandboxServices.DisposeAsync(backend);
    }

    /// <summary>One line for a person: sandboxes alive, queue, outcomes by kind, waits and run times.</summary>
    public static string Describe(SandboxAdmissionMetrics m)
    {
        long finished = m.Outcomes.Values.Sum();
        var outcomes = m.Outcomes.Count == 0 ? "none yet" : string.Join(", ", m.Outcomes.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value}"));
        return $"{m.Running} alive, {m.Waiting} queued, {m.Admitted} admitted, {m.Refused} refused; runs: {outcomes}; " +
            $"queue wait mean {(m.Admitted > 0 ? m.QueueWaitTotal.TotalMilliseconds / m.Admitted : 0):0} ms max {m.QueueWaitMax.TotalMilliseconds:0} ms; " +
            $"run time mean {(finished > 0 ? m.RunTimeTotal.TotalMilliseconds / finished : 0):0} ms";
    }
}
