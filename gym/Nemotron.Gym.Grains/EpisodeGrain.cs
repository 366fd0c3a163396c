using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;
using Stateless;

namespace Nemotron.Gym.Grains;

/// <summary>
/// One rollout's episode. The environment episode lives in memory: if the silo goes away the activation is gone
/// and a later call finds a fresh grain in state Created, which refuses Step/Grade; the trainer then replays the
/// episode on a new grain (environments are deterministic given the task and seed).
/// </summary>
public sealed class EpisodeGrain(EnvironmentPool pool, ILogger<EpisodeGrain> log) : Grain, IEpisodeGrain
{
    private enum Trigger { Open, Opened, Step, Continue, End, CutOff, Grade, Graded, Fail, TimeOut }

    /// <summary>An episode that waits this long for the model's next turn is abandoned.</summary>
    internal static TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    private EpisodeState _state = EpisodeState.Created;
    private StateMachine<EpisodeState, Trigger>? _fsm;
    private HostedEpisode? _episode;
    private EpisodeSpec? _spec;
    private double _environmentSeconds;
    private IGrainTimer? _idle;

    private StateMachine<EpisodeState, Trigger> Fsm => _fsm ??= Build();

    private StateMachine<EpisodeState, Trigger> Build()
    {
        var m = new StateMachine<EpisodeState, Trigger>(() => _state, s => _state = s);
        m.Configure(EpisodeState.Created).Permit(Trigger.Open, EpisodeState.Opened);
        m.Configure(EpisodeState.Opened).Permit(Trigger.Opened, EpisodeState.AwaitingModel).Permit(Trigger.Fail, EpisodeState.Failed).Permit(Trigger.TimeOut, EpisodeState.TimedOut);
        m.Configure(EpisodeState.AwaitingModel).Permit(Trigger.Step, EpisodeState.Stepping).Permit(Trigger.CutOff, EpisodeState.AwaitingGrade).Permit(Trigger.TimeOut, EpisodeState.TimedOut).Permit(Trigger.Fail, EpisodeState.Failed);
        m.Configure(EpisodeState.Stepping).Permit(Trigger.Continue, EpisodeState.AwaitingModel).Permit(Trigger.End, EpisodeState.AwaitingGrade)
            .Permit(Trigger.Fail, EpisodeState.Failed).Permit(Trigger.TimeOut, EpisodeState.TimedOut);
        m.Configure(EpisodeState.AwaitingGrade).Permit(Trigger.Grade, EpisodeState.Grading).Permit(Trigger.TimeOut, EpisodeState.TimedOut);
        m.Configure(EpisodeState.Grading).Permit(Trigger.Graded, EpisodeState.Done);
        m.OnUnhandledTrigger((state, trigger) =>
            throw new InvalidOperationException($"episode {this.GetPrimaryKeyString()}: cannot {trigger} while {state}"));
        return m;
    }

    /// <inheritdoc />
    public async Task<EpisodeOpening> Open(EpisodeSpec spec)
    {
        Fsm.Fire(Trigger.Open);
        _spec = spec;
        try
        {
            var env = await pool.GetAsync(spec.TaskSet.Environment, spec.TaskSet.Settings);
            var task = await pool.GetTaskAsync(spec.TaskSet, spec.TaskId);
            var clock = Stopwatch.StartNew();
            _episode = await env.OpenAsync(task, new EpisodeContext(spec.Seed, spec.SampleIndex));
            _environmentSeconds += clock.Elapsed.TotalSeconds;
            Fsm.Fire(Trigger.Opened);
            ArmIdleTimer();
            return new EpisodeOpening(_episode.Opening, _episode.Tools);
        }
        catch (Exception e) { throw Failed(e); }
    }

    /// <inheritdoc />
    public async Task<EpisodeReplyMessage> Step(AssistantTurn turn, bool final)
    {
        Fsm.Fire(Trigger.Step);
        _idle?.Dispose();
        try
        {
            var clock = Stopwatch.StartNew();
            var result = await _episode!.StepAsync(turn);
            _environmentSeconds += clock.Elapsed.TotalSeconds;
            if (final || result.Done)
            {
                Fsm.Fire(Trigger.End);
                return new EpisodeReplyMessage(true, []);
            }
            Fsm.Fire(Trigger.Continue);
            ArmIdleTimer();
            return new EpisodeReplyMessage(false, result.Reply);
        }
        catch (Exception e) { throw Failed(e); }
    }

    /// <inheritdoc />
    public async Task<EpisodeGrade> Grade(bool truncated)
    {
        // An episode whose context was full before the model's turn began (a long prompt or tool output) is graded as it
        // stands; only a truncated one may skip its final step.
        if (truncated && _state == EpisodeState.AwaitingModel)
        {
            _idle?.Dispose();
            Fsm.Fire(Trigger.CutOff);
        }
        Fsm.Fire(Trigger.Grade);
        var clock = Stopwatch.StartNew();
        Grade g; // a failing grader is reward 0 with its reason; only an episode lost with its plugin worker throws
        try { g = await _episode!.GradeAsync(); }
        catch (Exception e)
        {
            DeactivateOnIdle();
            throw Failed(e); // the trainer replays the episode on a new grain
        }
        _environmentSeconds += clock.Elapsed.TotalSeconds;
        Fsm.Fire(Trigger.Graded);
        await CloseEpisode();
        DeactivateOnIdle();
        return new EpisodeGrade(g, _environmentSeconds);
    }

    /// <inheritdoc />
    public Task<EpisodeState> GetState() => Task.FromResult(_state);

    private void ArmIdleTimer()
    {
        _idle?.Dispose();
        _idle = this.RegisterGrainTimer(async () =>
        {
            if (_state is not (EpisodeState.AwaitingModel or EpisodeState.AwaitingGrade)) return;
            Fsm.Fire(Trigger.TimeOut);
            log.LogWarning("episode {Key} timed out waiting for the model after {Timeout}", this.GetPrimaryKeyString(), IdleTimeout);
            await CloseEpisode();
            DeactivateOnIdle();
        }, new GrainTimerCreationOptions(IdleTimeout, Timeout.InfiniteTimeSpan) { KeepAlive = true });
    }

    private Exception Failed(Exception e)
    {
        if (Fsm.CanFire(Trigger.Fail) || Fsm.CanFire(Trigger.TimeOut))
            Fsm.Fire(e is EnvironmentTimeoutException && Fsm.CanFire(Trigger.TimeOut) ? Trigger.TimeOut : Trigger.Fail);
        _ = CloseEpisode();
        if (e is InvalidOperationException) return e;
        // Only plain exception types cross the wire; the message carries the environment, call and task.
        return new InvalidOperationException($"episode {this.GetPrimaryKeyString()} ({_spec?.TaskSet.Environment}/{_spec?.TaskId}): {e.Message}");
    }

    private async Task CloseEpisode()
    {
        _idle?.Dispose();
        _idle = null;
        var ep = _episode;
        _episode = null;
        if (ep != null)
        {
            try { await ep.DisposeAsync(); }
            catch (Exception e) { log.LogWarning(e, "episode {Key}: dispose failed", this.GetPrimaryKeyString()); }
        }
    }

    /// <inheritdoc />
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        await CloseEpisode();
        await base.OnDeactivateAsync(reason, cancellationToken);
    }
}
