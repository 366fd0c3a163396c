using Stateless;

namespace Nemotron.Gym.Grains;

/// <summary>What the run grain persists (through the "runs" grain storage).</summary>
public sealed class RunState
{
    public RunStatus Status { get; set; } = RunStatus.Created;
    public int Step { get; set; }
    public int TotalSteps { get; set; }
    public string? LastCheckpoint { get; set; }
    public string ConfigYaml { get; set; } = "";
    public string? Error { get; set; }
    public DateTimeOffset Created { get; set; }
    public DateTimeOffset Updated { get; set; }
    public bool Exists { get; set; }
}

/// <summary>A run's lifecycle, persisted after every change.</summary>
public sealed class RunGrain([PersistentState("run", RunGrain.StorageName)] IPersistentState<RunState> run) : Grain, IRunGrain
{
    /// <summary>The grain storage the run state lives in.</summary>
    public const string StorageName = "runs";

    private enum Trigger { Start, Pause, Complete, Fail }

    private StateMachine<RunStatus, Trigger> Fsm()
    {
        var m = new StateMachine<RunStatus, Trigger>(() => run.State.Status, s => run.State.Status = s);
        m.Configure(RunStatus.Created).Permit(Trigger.Start, RunStatus.Running).Permit(Trigger.Fail, RunStatus.Failed);
        // Start while Running: the host that ran it died without pausing; the new host takes over.
        m.Configure(RunStatus.Running).PermitReentry(Trigger.Start).Permit(Trigger.Pause, RunStatus.Paused)
            .Permit(Trigger.Complete, RunStatus.Completed).Permit(Trigger.Fail, RunStatus.Failed);
        m.Configure(RunStatus.Paused).Permit(Trigger.Start, RunStatus.Running).Permit(Trigger.Fail, RunStatus.Failed);
        m.Configure(RunStatus.Failed).Permit(Trigger.Start, RunStatus.Running); // retry after fixing the cause
        m.OnUnhandledTrigger((s, t) => throw new InvalidOperationException($"run '{this.GetPrimaryKeyString()}': cannot {t} while {s}"));
        return m;
    }

    /// <inheritdoc />
    public async Task<RunInfo> Create(string configYaml, int totalSteps)
    {
        if (run.State.Exists)
        {
            if (run.State.ConfigYaml != configYaml)
                throw new InvalidOperationException($"run '{this.GetPrimaryKeyString()}' exists with a different config; use a new run id (out folder) or the same config to resume");
            return Info();
        }
        var now = DateTimeOffset.UtcNow;
        run.State = new RunState { Exists = true, ConfigYaml = configYaml, TotalSteps = totalSteps, Created = now, Updated = now };
        await run.WriteStateAsync();
        return Info();
    }

    /// <inheritdoc />
    public async Task<RunInfo> Restart(string configYaml, int totalSteps)
    {
        var now = DateTimeOffset.UtcNow;
        run.State = new RunState { Exists = true, ConfigYaml = configYaml, TotalSteps = totalSteps, Created = now, Updated = now };
        await run.WriteStateAsync();
        return Info();
    }

    /// <inheritdoc />
    public async Task<RunInfo> Reconfigure(string configYaml)
    {
        Require();
        run.State.ConfigYaml = configYaml;
        run.State.Updated = DateTimeOffset.UtcNow;
        await run.WriteStateAsync();
        return Info();
    }

    /// <inheritdoc />
    public Task<RunInfo> Start(int fromStep) => Change(Trigger.Start, s => { s.Error = null; s.Step = fromStep; });
    /// <inheritdoc />
    public Task<RunInfo> Pause() => Change(Trigger.Pause, _ => { });
    /// <inheritdoc />
    public Task<RunInfo> Complete(string finalCheckpoint) => Change(Trigger.Complete, s => { s.LastCheckpoint = finalCheckpoint; s.Step = s.TotalSteps; });
    /// <inheritdoc />
    public Task<RunInfo> Fail(string error) => Change(Trigger.Fail, s => s.Error = error);

    /// <inheritdoc />
    public async Task<RunInfo> ReportStep(int step, string? checkpoint)
    {
        Require();
        if (run.State.Status != RunStatus.Running) throw new InvalidOperationException($"run '{this.GetPrimaryKeyString()}': step reported while {run.State.Status}");
        if (step < run.State.Step) throw new InvalidOperationException($"run '{this.GetPrimaryKeyString()}': step {step} reported after step {run.State.Step}");
        run.State.Step = step;
        if (checkpoint != null) run.State.LastCheckpoint = checkpoint;
        run.State.Updated = DateTimeOffset.UtcNow;
        await run.WriteStateAsync();
        return Info();
    }

    /// <inheritdoc />
    public Task<RunInfo?> Get() => Task.FromResult(run.State.Exists ? Info() : null);

    private async Task<RunInfo> Change(Trigger trigger, Action<RunState> update)
    {
        Require();
        Fsm().Fire(trigger);
        update(run.State);
        run.State.Updated = DateTimeOffset.UtcNow;
        await run.WriteStateAsync();
        return Info();
    }

    private void Require()
    {
        if (!run.State.Exists) throw new InvalidOperationException($"run '{this.GetPrimaryKeyString()}' was never created");
    }

    private RunInfo Info() => new(this.GetPrimaryKeyString(), run.State.Status, run.State.Step, run.State.TotalSteps, run.State.LastCheckpoint,
        run.State.ConfigYaml, run.State.Error, run.State.Created, run.State.Updated);
}
