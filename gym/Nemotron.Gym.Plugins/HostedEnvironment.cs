using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Plugins;

/// <summary>Limits the host puts on environment calls.</summary>
/// <param name="CallTimeout">Any single call (load, open, step, grade) longer than this is cancelled and reported.</param>
/// <param name="GroupCallTimeout">The limit for grading a whole group (a judge compares many pairs); null: 10 × <paramref name="CallTimeout"/>.</param>
public sealed record HostLimits(TimeSpan CallTimeout, TimeSpan? GroupCallTimeout = null)
{
    /// <summary>The limit that applies to a group grading call.</summary>
    public TimeSpan GroupTimeout => GroupCallTimeout ?? CallTimeout * 10;

    /// <summary>30 seconds a call.</summary>
    public static HostLimits Default { get; } = new(TimeSpan.FromSeconds(30));
}

/// <summary>Services with nothing in them yet, and a log that prefixes the environment's name.</summary>
public sealed class HostServices(IReadOnlyDictionary<Type, object>? services = null) : IEnvironmentServices
{
    /// <inheritdoc />
    public T? Get<T>() where T : class => services != null && services.TryGetValue(typeof(T), out var s) ? (T)s : null;
}

/// <summary>A log that writes lines to a callback with the environment's name.</summary>
public sealed class PrefixLog(string name, Action<string> sink) : IEnvironmentLog
{
    /// <inheritdoc />
    public void Write(string message) => sink($"[{name}] {message}");
}

/// <summary>A call into an environment failed; the message names the environment, the call and the task.</summary>
public class EnvironmentCallException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A call into an environment did not finish within the host's limit (<see cref="HostLimits.CallTimeout"/>).</summary>
public sealed class EnvironmentTimeoutException(string message) : EnvironmentCallException(message);

/// <summary>
/// An initialized environment as the host runs it: every call has a timeout, and exceptions from the
/// plugin become errors that name the environment, the call and the task. Grading never throws: a
/// grader that crashes or hangs gives reward 0 with the reason.
/// </summary>
public sealed class HostedEnvironment
{
    private readonly IEnvironment _environment;
    private readonly HostLimits _limits;

    private HostedEnvironment(IEnvironment environment, PluginEnvironment plugin, HostLimits limits)
    {
        _environment = environment;
        Plugin = plugin;
        _limits = limits;
        if (environment is IAsyncOnlyEnvironment asyncOnly) asyncOnly.Limits = limits;
    }

    /// <summary>Where it came from.</summary>
    public PluginEnvironment Plugin { get; }
    /// <summary>Its self-description.</summary>
    public EnvironmentDescriptor Descriptor => Plugin.Descriptor;
    /// <summary>The environment's name.</summary>
    public string Name => Descriptor.Name;

    /// <summary>Creates and initializes an environment with its settings (defaults plus <paramref name="settings"/>).</summary>
    public static async Task<HostedEnvironment> StartAsync(PluginEnvironment plugin, IReadOnlyDictionary<string, string>? settings, HostLimits limits,
        Action<string>? log = null, IEnvironmentServices? services = null, CancellationToken cancellation = default)
    {
        var resolved = ConfigValues.Resolve(plugin.Descriptor, settings);
        IEnvironment env;
        try { env = plugin.Create(); }
        catch (Exception e) { throw new EnvironmentCallException($"environment '{plugin.Descriptor.Name}' ({plugin.AssemblyPath}): constructor failed: {PluginLoader.Unwrap(e).Message}", e); }
        var hosted = new HostedEnvironment(env, plugin, limits);
        var context = new EnvironmentContext(resolved, plugin.DataDirectory, services ?? new HostServices(), new PrefixLog(plugin.Descriptor.Name, log ?? (_ => { })));
        await hosted.Call("initialize", null, ct => env.InitializeAsync(context, ct).AsTask().ContinueWith(t => { t.GetAwaiter().GetResult(); return 0; }, TaskScheduler.Default), cancellation);
        return hosted;
    }

    /// <summary>The tasks of a split.</summary>
    public Task<IReadOnlyList<TaskRecord>> LoadTasksAsync(TaskQuery query, CancellationToken cancellation = default) =>
        Call($"load tasks ({query.Split})", null, ct => _environment.LoadTasksAsync(query, ct).AsTask(), cancellation);

    /// <summary>The environment's own checks of a task.</summary>
    public IReadOnlyList<string> ValidateTask(TaskRecord task)
    {
        try { return _environment.ValidateTask(task); }
        catch (Exception e) { return [$"validate threw {e.GetType().Name}: {e.Message}"]; }
    }

    /// <summary>Opens an episode.</summary>
    public async Task<HostedEpisode> OpenAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation = default)
    {
        var episode = await Call("open episode", task.Id, ct => _environment.OpenEpisodeAsync(task, context, ct).AsTask(), cancellation);
        return new HostedEpisode(this, episode, task.Id);
    }

    /// <summary>Whether the environment grades whole groups (<see cref="IGroupGradedEnvironment"/>).</summary>
    public bool GradesGroups => _environment is IGroupGradedEnvironment;

    /// <summary>
    /// The final grades of a group (one per member, in order) from a group-graded environment, within the group limit.
    /// Never throws except for the caller's cancellation: a grader that fails, hangs or answers with the wrong number of
    /// grades masks every member with the reason (a failure of the grader says nothing about the responses).
    /// </summary>
    public async Task<IReadOnlyList<Grade>> GradeGroupAsync(TaskRecord task, IReadOnlyList<GroupMember> members, CancellationToken cancellation = default)
    {
        if (_environment is not IGroupGradedEnvironment grader) return members.Select(m => m.Grade).ToList();
        try
        {
            var grades = await Call("grade group", task.Id, ct => grader.GradeGroupAsync(task, members, ct).AsTask(), cancellation, _limits.GroupTimeout);
            if (grades.Count != members.Count)
                throw new EnvironmentCallException($"environment '{Name}', task {task.Id}: grade group returned {grades.Count} grades for {members.Count} members");
            // Checked here, as episode grades are: a grade from a plugin (or its worker) that is null or not finite masks its member.
            return grades.Select((g, i) => GradeProblem(g) is { } problem
                ? Grade.NotJudged($"environment '{Name}', task {task.Id}: grade group gave member {i} {problem}")
                : g).ToList();
        }
        catch (EnvironmentCallException e)
        {
            return members.Select(_ => Grade.NotJudged(e.Message)).ToList();
        }
    }

    /// <summary>What makes a grade from plugin code unusable (null, a null field, a reward or component that is not finite); null when it is sound.</summary>
    internal static string? GradeProblem(Grade? grade)
    {
        if (grade is null) return "no grade (null)";
        if (!double.IsFinite(grade.Reward)) return $"the reward {grade.Reward}, not a finite number";
        if (grade.Components is null || grade.Evidence is null || grade.Reason is null) return "a grade with a null field";
        foreach (var (name, value) in grade.Components)
            if (!double.IsFinite(value)) return $"the component {name} = {value}, not a finite number";
        return null;
    }

    internal async Task<T> Call<T>(string what, string? taskId, Func<CancellationToken, Task<T>> call, CancellationToken cancellation, TimeSpan? limit = null)
    {
        var timeout = limit ?? _limits.CallTimeout;
        // A host-side environment bounds each call by the limits it was given (see IAsyncOnlyEnvironment): it is called
        // directly, with the caller's token, and no token source or timer is made here.
        if (_environment is IAsyncOnlyEnvironment)
        {
            try { return await call(cancellation); }
            catch (Exception e) when (e is not EnvironmentCallException && !(e is OperationCanceledException && cancellation.IsCancellationRequested))
            {
                throw Failure(e, what, taskId, timeout);
            }
        }
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        cts.CancelAfter(timeout);
        try
        {
            // Plugin code runs on the thread pool (it may block), and WaitAsync bounds the wait even if the plugin
            // ignores its token.
            return await Task.Run(() => call(cts.Token), cts.Token).WaitAsync(timeout, cancellation);
        }
        catch (Exception e) when (e is not EnvironmentCallException && !(e is OperationCanceledException && cancellation.IsCancellationRequested))
        {
            // WaitAsync's timer may fire before CancelAfter's, and disposing the source does not cancel it: cancel here,
            // so that the call is always told to stop.
            if (e is TimeoutException or OperationCanceledException) cts.Cancel();
            throw Failure(e, what, taskId, timeout);
        }
    }

    /// <summary>What a failed call throws: a timeout, or the failure naming the environment, task and call (formatted only when a call fails).</summary>
    private EnvironmentCallException Failure(Exception e, string what, string? taskId, TimeSpan timeout)
    {
        string where = $"environment '{Name}'{(taskId != null ? $", task {taskId}" : "")}: {what}";
        if (e is TimeoutException or OperationCanceledException)
            return new EnvironmentTimeoutException($"{where} did not finish within {timeout.TotalSeconds:0.#}s");
        return new EnvironmentCallException($"{where} failed: {(e is PluginFaultException f ? f.TypeName : e.GetType().Name)}: {e.Message}", e);
    }
}

/// <summary>An episode as the host drives it.</summary>
public sealed class HostedEpisode : IAsyncDisposable
{
    private readonly HostedEnvironment _host;
    private readonly IEpisode _episode;
    private readonly string _taskId;

    internal HostedEpisode(HostedEnvironment host, IEpisode episode, string taskId)
    {
        _host = host;
        _episode = episode;
        _taskId = taskId;
    }

    /// <summary>The opening messages.</summary>
    public IReadOnlyList<Message> Opening => _episode.Opening;
    /// <summary>The tools offered.</summary>
    public IReadOnlyList<ToolDefinition> Tools => _episode.Tools;

    /// <summary>Passes an assistant turn; an environment failure is an <see cref="EnvironmentCallException"/>.</summary>
    public Task<StepResult> StepAsync(AssistantTurn turn, CancellationToken cancellation = default) =>
        _host.Call("step", _taskId, ct => _episode.StepAsync(turn, ct).AsTask(), cancellation);

    /// <summary>
    /// Grades; a grader that fails, hangs, or returns a reward or component that is not a finite number gives a not-judged grade
    /// (<see cref="Grade.NotJudged"/>) with the component <c>grader_error</c> and the reason. Throws only for cancellation by the caller, and
    /// <see cref="EpisodeLostException"/> when the episode was lost with its worker process (it is replayed, not graded).
    /// </summary>
    public async Task<Grade> GradeAsync(CancellationToken cancellation = default)
    {
        Grade? grade;
        try { grade = await _host.Call("grade", _taskId, ct => _episode.GradeAsync(ct).AsTask(), cancellation); }
        catch (EnvironmentCallException e) when (e is not EpisodeLostException) { return GraderError(e.Message); }
        // Checked here, at the boundary, in both hosting modes: a NaN reaching the trainer poisons a whole step.
        if (HostedEnvironment.GradeProblem(grade) is { } problem)
            return GraderError($"environment '{_host.Name}', task {_taskId}: grade returned {problem}{(grade?.Reason is { } reason ? $" (its reason: {reason})" : "")}");
        return grade!;
    }

    // Not judged rather than 0: a broken grader says nothing about the answer, so the trainer masks the rollout
    // (with this reason) instead of teaching the model that it was wrong (docs/grpo.md, masking).
    private static Grade GraderError(string reason) =>
        Grade.NotJudged(reason, new Dictionary<string, double> { ["grader_error"] = 1 });

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try { await _episode.DisposeAsync(); }
        catch { /* a plugin failing to clean up must not take the host down */ }
    }
}
