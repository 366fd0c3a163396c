using System.Runtime.CompilerServices;
using MessagePack;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;

namespace Nemotron.Gym.PluginWorker;

/// <summary>
/// An environment whose plugin runs in worker processes, seen through the plugin contract: <see cref="HostedEnvironment"/>
/// drives it exactly as it drives a plugin object in process. It is initialized again, with the same settings, in
/// every worker that serves it (a new worker after a crash, the other workers of the pool); tasks are sent to a
/// worker once and named by handle afterwards.
/// </summary>
internal class WorkerEnvironment(WorkerPool pool, string assembly, string type, EnvironmentDescriptor descriptor) : IAsyncOnlyEnvironment
{
    private readonly ConditionalWeakTable<WorkerProcess, Lazy<Task<int>>> _initialized = new();
    private Initialized? _last; // the worker most calls go to, and this environment's handle there: no table lookup per call

    private sealed record Initialized(WorkerProcess Worker, int Handle);
    private EnvironmentContext? _context;
    private List<(Type Type, object Service)> _services = [];

    public EnvironmentDescriptor Descriptor => descriptor;

    /// <summary>The host's limits (set by <see cref="HostedEnvironment"/> before any call): each call is bounded by them here.</summary>
    public HostLimits? Limits { private get; set; }

    /// <summary>The limit of one call (null: none, only the caller's token).</summary>
    private TimeSpan? CallLimit => Limits?.CallTimeout;

    private string Name => descriptor.Name;
    private TimeSpan KillGrace => pool.Settings.KillGrace;

    public async ValueTask InitializeAsync(EnvironmentContext context, CancellationToken cancellation)
    {
        _context = context;
        _services = [];
        foreach (var t in WorkerServices.Proxied)
        {
            var get = typeof(IEnvironmentServices).GetMethod(nameof(IEnvironmentServices.Get))!.MakeGenericMethod(t);
            if (get.Invoke(context.Services, null) is { } service) _services.Add((t, service));
        }
        // The first worker starts now, so a plugin that cannot start fails here, as it would in process.
        await InitializedIn(pool.First.Current(), cancellation);
    }

    /// <summary>This environment's handle in <paramref name="worker"/>, initializing it there first if needed.</summary>
    private ValueTask<int> InitializedIn(WorkerProcess worker, CancellationToken cancellation)
    {
        if (Volatile.Read(ref _last) is { } last && last.Worker == worker) return new(last.Handle);
        var context = _context ?? throw new InvalidOperationException($"environment '{Name}' used before InitializeAsync");
        var lazy = _initialized.GetValue(worker, w => new Lazy<Task<int>>(() => InitializeIn(w, context, cancellation)));
        if (lazy.Value.IsCompletedSuccessfully) // every call after the first: no wait to set up
        {
            Volatile.Write(ref _last, new Initialized(worker, lazy.Value.Result));
            return new(lazy.Value.Result);
        }
        return new(InitializingIn(worker, lazy, cancellation));
    }

    private async Task<int> InitializingIn(WorkerProcess worker, Lazy<Task<int>> lazy, CancellationToken cancellation)
    {
        try { return await lazy.Value.WaitAsync(cancellation); }
        catch when (lazy.Value.IsFaulted || lazy.Value.IsCanceled)
        {
            _initialized.Remove(worker); // not cached: the next call tries again
            throw;
        }
    }

    private async Task<int> InitializeIn(WorkerProcess worker, EnvironmentContext context, CancellationToken cancellation)
    {
        int handle = worker.NewHandle();
        worker.AddLog(handle, context.Log);
        var offered = new List<string>();
        foreach (var (t, service) in _services) offered.AddRange([t.FullName!, worker.Services.Offer(service, t).ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await worker.CallAsync(Request.Initialize, (ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(6);
            w.Write(handle);
            w.Write(assembly);
            w.Write(type);
            w.WriteMapHeader(context.Settings.Count);
            foreach (var (k, v) in context.Settings) { w.Write(k); w.Write(v); }
            w.Write(context.DataDirectory);
            WorkerProtocol.WriteStrings(ref w, offered);
        }, "initialize", KillGrace, cancellation, CallLimit);
        return handle;
    }

    public async ValueTask<IReadOnlyList<TaskRecord>> LoadTasksAsync(TaskQuery query, CancellationToken cancellation)
    {
        var worker = pool.First.Current();
        int env = await InitializedIn(worker, cancellation);
        var payload = await worker.CallAsync(Request.LoadTasks, (ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(4);
            w.Write(env);
            w.Write(query.Split);
            w.Write(query.Count);
            w.Write(query.Seed);
        }, new CallLabel($"load tasks ({query.Split})"), KillGrace, cancellation, CallLimit);
        var r = new MessagePackReader(payload);
        int n = r.ReadArrayHeader();
        var tasks = new List<TaskRecord>(Math.Min(n, 1 << 20));
        for (int i = 0; i < n; i++)
        {
            r.ReadArrayHeader();
            int handle = r.ReadInt32();
            var task = TaskRecord.Parse(WorkerProtocol.Text(ref r), $"environment '{Name}', split {query.Split}, task {i + 1} from its worker");
            var sent = new SentTask(handle);
            sent.Queued.TrySetResult();
            worker.Tasks.AddOrUpdate(task, sent);
            tasks.Add(task);
        }
        return tasks;
    }

    public IReadOnlyList<string> ValidateTask(TaskRecord task)
    {
        // The contract makes this call synchronous; it still runs in the worker, bounded like every other call.
        using var timeout = new CancellationTokenSource(pool.Settings.StartTimeout);
        var worker = pool.First.Current();
        return Task.Run(async () =>
        {
            int env = await InitializedIn(worker, timeout.Token);
            var payload = await SendWithTask(worker, task, Request.Validate, "validate", (ref MessagePackWriter w, TaskRef t) =>
            {
                w.WriteArrayHeader(2);
                w.Write(env);
                WorkerProtocol.WriteTaskRef(ref w, t);
            }, timeout.Token, null);
            var r = new MessagePackReader(payload);
            return (IReadOnlyList<string>)WorkerProtocol.ReadStrings(ref r);
        }).GetAwaiter().GetResult();
    }

    // The episode calls return a ValueTask over a Task: the host turns each into a Task (AsTask), which then costs no
    // wrapper object and no second continuation.
    public ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation) =>
        new(OpeningEpisode(task, context, cancellation));

    private async Task<IEpisode> OpeningEpisode(TaskRecord task, EpisodeContext context, CancellationToken cancellation)
    {
        var worker = pool.Next().Current();
        int env = await InitializedIn(worker, cancellation);
        var payload = await SendWithTask(worker, task, Request.Open, "open episode", (ref MessagePackWriter w, TaskRef t) =>
        {
            w.WriteArrayHeader(4);
            w.Write(env);
            WorkerProtocol.WriteTaskRef(ref w, t);
            w.Write(context.Seed);
            w.Write(context.SampleIndex);
        }, cancellation, CallLimit);
        var r = new MessagePackReader(payload);
        r.ReadArrayHeader();
        int handle = r.ReadInt32();
        // Nil: the episode opens with the task's own messages and tools (the host's copy of the task is the one it sent).
        var opening = r.TryReadNil() ? task.Input : WorkerProtocol.ReadMessages(ref r);
        var tools = r.TryReadNil() ? task.Tools : WorkerProtocol.ReadTools(ref r);
        return new WorkerEpisode(worker, handle, opening, tools, Name, task.Id, KillGrace, pool.Settings.GradeAhead, CallLimit);
    }

    /// <summary>A whole group graded in a worker (the plugin's <see cref="IGroupGradedEnvironment"/>): members in, one grade each out.</summary>
    protected async ValueTask<IReadOnlyList<Grade>> GradeGroupInWorkerAsync(TaskRecord task, IReadOnlyList<GroupMember> members, CancellationToken cancellation)
    {
        var worker = pool.Next().Current();
        int env = await InitializedIn(worker, cancellation);
        var payload = await SendWithTask(worker, task, Request.GradeGroup, "grade group", (ref MessagePackWriter w, TaskRef t) =>
        {
            w.WriteArrayHeader(3);
            w.Write(env);
            WorkerProtocol.WriteTaskRef(ref w, t);
            WorkerProtocol.WriteMembers(ref w, members);
        }, cancellation, Limits?.GroupTimeout);
        var r = new MessagePackReader(payload);
        return WorkerProtocol.ReadGrades(ref r);
    }

    private delegate void WriteWithTask(ref MessagePackWriter writer, TaskRef task);

    /// <summary>Sends a request that names a task: with its JSON the first time this worker sees it, by handle after that.</summary>
    private Task<ReadOnlyMemory<byte>> SendWithTask(WorkerProcess worker, TaskRecord task, Request kind, string what, WriteWithTask write, CancellationToken cancellation, TimeSpan? limit)
    {
        // The usual case, a task this worker holds already: the call's own task, no async state here.
        if (worker.Tasks.TryGetValue(task, out var known) && known.Queued.Task.IsCompleted)
        {
            var byHandle = new TaskRef(known.Handle, null);
            return worker.CallAsync(kind, (ref MessagePackWriter w) => write(ref w, byHandle), new CallLabel(what, task.Id), KillGrace, cancellation, limit);
        }
        return SendingWithTask(worker, task, kind, what, write, cancellation, limit);
    }

    private async Task<ReadOnlyMemory<byte>> SendingWithTask(WorkerProcess worker, TaskRecord task, Request kind, string what, WriteWithTask write, CancellationToken cancellation, TimeSpan? limit)
    {
        bool first = false;
        if (!worker.Tasks.TryGetValue(task, out var sent))
        {
            var mine = new SentTask(worker.NewHandle());
            first = worker.Tasks.TryAdd(task, mine);
            if (!first) worker.Tasks.TryGetValue(task, out sent);
            else sent = mine;
        }
        var taskRef = new TaskRef(sent!.Handle, first ? task.ToJsonLine() : null);
        if (!first && !sent.Queued.Task.IsCompleted) await sent.Queued.Task.WaitAsync(cancellation);
        // The request is queued before CallAsync first awaits, so marking the task as sent after the call starts is safe.
        Task<ReadOnlyMemory<byte>> call;
        try { call = worker.CallAsync(kind, (ref MessagePackWriter w) => write(ref w, taskRef), new CallLabel(what, task.Id), KillGrace, cancellation, limit); }
        finally
        {
            // The request is queued (or failed) before CallAsync returns, so marking the task as sent here is safe.
            if (first) sent.Queued.TrySetResult();
        }
        return await call;
    }
}

/// <summary>A worker-hosted environment whose plugin grades whole groups: <see cref="HostedEnvironment"/> sees the capability as it would in process.</summary>
internal sealed class GroupGradedWorkerEnvironment(WorkerPool pool, string assembly, string type, EnvironmentDescriptor descriptor)
    : WorkerEnvironment(pool, assembly, type, descriptor), IGroupGradedEnvironment
{
    public ValueTask<IReadOnlyList<Grade>> GradeGroupAsync(TaskRecord task, IReadOnlyList<GroupMember> members, CancellationToken cancellation) =>
        GradeGroupInWorkerAsync(task, members, cancellation);
}

/// <summary>
/// An episode held by one worker process; if that process is gone, so is the episode. With grade-ahead on, every step
/// asks the worker to grade the episode as soon as a step ends it (<see cref="Request.Step"/>): the grade is usually
/// there when the host asks for it, so a single-turn episode costs two round trips (open, step) instead of three and a
/// dispose. Waiting for that grade is bounded like any call: the host's time limit, then Cancel, then kill.
/// </summary>
internal sealed class WorkerEpisode(WorkerProcess worker, int handle, IReadOnlyList<Message> opening, IReadOnlyList<ToolDefinition> tools,
    string environment, string taskId, TimeSpan killGrace, bool gradeAhead, TimeSpan? callLimit) : IEpisode
{
    private (int Id, PendingCall Reply)? _graded;
    private bool _gradeAsked;

    public IReadOnlyList<Message> Opening => opening;
    public IReadOnlyList<ToolDefinition> Tools => tools;

    public ValueTask<StepResult> StepAsync(AssistantTurn turn, CancellationToken cancellation) => new(Stepping(turn, cancellation));

    private async Task<StepResult> Stepping(AssistantTurn turn, CancellationToken cancellation)
    {
        if (_graded != null) throw new InvalidOperationException($"environment '{environment}', task {taskId}: step after the episode ended");
        int gradeId = 0;
        PendingCall? gradeReply = null;
        if (gradeAhead && worker.Alive) gradeId = worker.Expect(out gradeReply, new CallLabel("grade", taskId, environment));
        ReadOnlyMemory<byte> payload;
        try
        {
            payload = await Call(Request.Step, "step", (ref MessagePackWriter w) =>
            {
                w.WriteArrayHeader(3);
                w.Write(handle);
                WorkerProtocol.WriteTurn(ref w, turn);
                w.Write(gradeId);
            }, cancellation);
        }
        catch
        {
            if (gradeId != 0) worker.Forget(gradeId);
            throw;
        }
        var r = new MessagePackReader(payload);
        r.ReadArrayHeader();
        bool done = r.ReadBoolean();
        var reply = WorkerProtocol.ReadMessages(ref r);
        if (done)
        {
            if (gradeId != 0) _graded = (gradeId, gradeReply!);
            return StepResult.End;
        }
        if (gradeId != 0) worker.Forget(gradeId);
        // StepResult checks the reply (at least one message, tool or user roles): a worker cannot send what a plugin could not.
        try { return StepResult.Continue([.. reply]); }
        catch (ArgumentException e) { throw new PluginFaultException(nameof(ArgumentException), e.Message); }
    }

    public ValueTask<Grade> GradeAsync(CancellationToken cancellation) => new(Grading(cancellation));

    private async Task<Grade> Grading(CancellationToken cancellation)
    {
        ReadOnlyMemory<byte> payload;
        if (_graded is var (id, graded))
        {
            _gradeAsked = true;
            // The reply may be here already even if the worker has died since.
            payload = await worker.AwaitAsync(id, graded, killGrace, cancellation, callLimit);
        }
        else
        {
            payload = await Call(Request.Grade, "grade", (ref MessagePackWriter w) =>
            {
                w.WriteArrayHeader(1);
                w.Write(handle);
            }, cancellation);
        }
        var r = new MessagePackReader(payload);
        return WorkerProtocol.ReadGrade(ref r);
    }

    private Task<ReadOnlyMemory<byte>> Call(Request kind, string what, WritePayload payload, CancellationToken cancellation)
    {
        if (!worker.Alive) throw new EpisodeLostException($"environment '{environment}', task {taskId}: {what}: plugin worker {worker.Name} {worker.DeathReason}, and the episode with it");
        return worker.CallAsync(kind, payload, new CallLabel(what, taskId, environment), killGrace, cancellation, callLimit);
    }

    public ValueTask DisposeAsync()
    {
        // An episode graded ahead is closed by the worker once its grade is made. One closed before the host asked for
        // that grade (an episode abandoned after its last step) has its grading cancelled, bounded like a call: a grader
        // that does not stop within the grace has its worker killed. (Once asked, the wait for it did that already.)
        if (_graded is var (id, reply))
        {
            if (!_gradeAsked && !reply.Task.IsCompleted) worker.Abandon(id, $"grade of task {taskId} (made ahead, not asked for)", killGrace);
        }
        else if (worker.Alive) worker.Send(Request.Dispose, (ref MessagePackWriter w) => w.Write(handle));
        return ValueTask.CompletedTask;
    }
}
