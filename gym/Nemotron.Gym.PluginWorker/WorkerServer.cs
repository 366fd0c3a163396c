using System.Buffers;
using System.Collections.Concurrent;
using System.Text.Json;
using MessagePack;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Plugins;

namespace Nemotron.Gym.PluginWorker;

/// <summary>
/// The worker's side of the channel: reads requests, runs each against the plugin, and writes the replies. Everything
/// the plugin does happens in this process; when the host closes the channel the worker exits, whatever threads the
/// plugin still has running.
/// <para>
/// A request runs inline on the read loop, up to its first wait: a plugin call that completes synchronously (most
/// graders) costs no thread hop, and the replies to a burst of requests leave in one write. A call that holds the
/// loop longer than <see cref="InlineLimitMs"/> (a slow or hung plugin, a plugin blocking on a host service) does
/// not stall the channel: a watchdog hands reading to a new loop, and the old one ends when its call returns.
/// </para>
/// </summary>
internal sealed class WorkerServer
{
    /// <summary>How long a request may hold the read loop before reading moves to a new loop (checked at this period, so up to twice it).</summary>
    private const int InlineLimitMs = 20;

    private readonly BatchingFrameWriter _output;
    private readonly ConcurrentDictionary<int, IEnvironment> _environments = new();
    private readonly ConcurrentDictionary<int, IEpisode> _episodes = new();
    private readonly ConcurrentDictionary<int, TaskRecord> _tasks = new();
    private readonly ConcurrentDictionary<int, CancellationTokenSource> _running = new();
    private readonly ConcurrentDictionary<string, List<PluginEnvironment>> _assemblies = new(StringComparer.Ordinal);
    private readonly ServiceClient _services;
    private int _nextEpisode;
    private int _nextTask = -1; // tasks this worker loads count down; the host numbers the ones it sends upwards

    private readonly FrameReader _input;
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inlineCall; // the number of the request running inline on the read loop now; 0 when none
    private int _nextInline;
    private int _watched;    // the inline request the watchdog saw last time

    private WorkerServer(Stream input, Stream output)
    {
        _input = new FrameReader(input); // a burst of requests arrives in one read
        _output = new BatchingFrameWriter(output, writeOnRelease: true);
        _services = new ServiceClient(_output);
    }

    /// <summary>Serves until the host closes <paramref name="input"/>.</summary>
    public static async Task RunAsync(Stream input, Stream output)
    {
        var server = new WorkerServer(input, output);
        using var watchdog = new Timer(_ => server.Watch(), null, InlineLimitMs, InlineLimitMs);
        server.StartReading();
        await server._ended.Task;
    }

    /// <summary>
    /// Reading runs on a thread of its own with blocking reads: a read that waits for the host costs no thread-pool
    /// work item, and the requests of a burst run on it one after the other.
    /// </summary>
    private void StartReading() => new Thread(ReadLoop) { IsBackground = true, Name = "plugin worker requests" }.Start();

    /// <summary>Reads and runs requests until the input ends, or until the watchdog hands reading to another loop.</summary>
    private void ReadLoop()
    {
        try
        {
            _output.Hold();
            while (true)
            {
                if (!_input.HasBufferedFrame)
                {
                    // Nothing more has arrived: the replies made so far go now, in one write, before waiting for more.
                    _output.Release();
                    var next = _input.Read();
                    _output.Hold();
                    if (next is not { } first) break;
                    if (!Dispatch(first.Id, (Request)first.Kind, first.Payload)) return;
                    continue;
                }
                if (_input.Read() is not { } frame) break;
                if (!Dispatch(frame.Id, (Request)frame.Kind, frame.Payload)) return;
            }
            _output.Release();
            _ended.TrySetResult();
        }
        catch (Exception e)
        {
            _output.Release();
            _ended.TrySetException(e);
        }
    }

    /// <summary>
    /// Runs on a timer: a request that has held the read loop for a whole period loses it. Reading goes on in a new loop
    /// (the held loop's pending replies are written first); the old loop ends when its request returns.
    /// </summary>
    private void Watch()
    {
        int running = Volatile.Read(ref _inlineCall);
        if (running == 0 || running != _watched)
        {
            _watched = running;
            return;
        }
        if (Interlocked.CompareExchange(ref _inlineCall, 0, running) != running) return; // it returned just now
        _output.Release();
        StartReading();
    }

    /// <summary>Handles one frame on the read loop; false when this loop has lost reading to a new one meanwhile.</summary>
    private bool Dispatch(int id, Request kind, ReadOnlyMemory<byte> payload)
    {
        switch (kind)
        {
            case Request.Cancel:
                var r = new MessagePackReader(payload);
                if (_running.TryGetValue(r.ReadInt32(), out var cts)) cts.Cancel();
                return true;
            case Request.Dispose:
                var d = new MessagePackReader(payload);
                if (_episodes.TryRemove(d.ReadInt32(), out var ended)) return RunInline(() => DisposeQuietly(ended));
                return true;
            case Request.ServiceReply:
                _services.Complete(payload);
                return true;
        }
        // A task sent with its JSON is registered here, in frame order, so a later request that names only its handle finds it.
        if (kind is Request.Open or Request.Validate or Request.GradeGroup)
        {
            var reader = new MessagePackReader(payload);
            reader.ReadArrayHeader();
            reader.ReadInt32();
            var task = WorkerProtocol.ReadTaskRef(ref reader);
            if (task.Json != null) _tasks.TryAdd(task.Handle, TaskRecord.Parse(task.Json, $"task #{task.Handle} from the host"));
        }
        var source = new CancellationTokenSource();
        _running[id] = source;
        // A step may ask for its episode's grade ahead (see Request.Step): its id is registered now, so that a Cancel for it
        // that comes before the grade starts still reaches it.
        int gradeAheadId = 0, episode = 0;
        CancellationTokenSource? gradeSource = null;
        if (kind == Request.Step)
        {
            var reader = new MessagePackReader(payload);
            int fields = reader.ReadArrayHeader();
            episode = reader.ReadInt32();
            if (fields >= 3)
            {
                reader.Skip();
                gradeAheadId = reader.ReadInt32();
            }
            if (gradeAheadId != 0) _running[gradeAheadId] = gradeSource = new CancellationTokenSource();
        }
        return RunInline(async () =>
        {
            var outcome = new StepOutcome();
            await RunAsync(id, source, ct => HandleAsync(kind, payload, outcome, ct));
            if (gradeSource == null) return;
            if (outcome.Done)
            {
                await RunAsync(gradeAheadId, gradeSource, ct => HandleAsync(Request.Grade, GradeRequest(episode), outcome, ct));
                // Graded ahead, the episode is over: the host sends no Dispose for it.
                if (_episodes.TryRemove(episode, out var ended)) await DisposeQuietly(ended);
            }
            else
            {
                _running.TryRemove(gradeAheadId, out _);
                gradeSource.Dispose();
            }
        });
    }

    /// <summary>
    /// Starts <paramref name="work"/> on this thread (it runs until its first wait) under the watchdog; false when the
    /// watchdog gave reading to a new loop meanwhile, so this loop must stop.
    /// </summary>
    private bool RunInline(Func<Task> work)
    {
        int call = Interlocked.Increment(ref _nextInline);
        if (call == 0) call = Interlocked.Increment(ref _nextInline); // 0 means none
        Volatile.Write(ref _inlineCall, call);
        _ = work();
        return Interlocked.CompareExchange(ref _inlineCall, 0, call) == call;
    }

    /// <summary>Runs one request under its cancellation source and sends its reply (Ok with the result, or Error).</summary>
    private async Task RunAsync(int id, CancellationTokenSource source, Func<CancellationToken, Task<WritePayload?>> handle)
    {
        WritePayload? result = null;
        Exception? failure = null;
        try { result = await handle(source.Token); }
        catch (Exception e) { failure = e; }
        SendReply(id, source, result, failure);
    }

    /// <summary>
    /// Sends a request's reply: its result, or the error (of the call, or of writing its result). The request is
    /// forgotten (a Cancel for it finds nothing) before its reply is sent.
    /// </summary>
    private void SendReply(int id, CancellationTokenSource source, WritePayload? result, Exception? failure)
    {
        ReadOnlySpan<byte> frame = default;
        if (failure == null)
        {
            try { frame = WorkerProtocol.FrameSpan(id, (byte)Reply.Ok, result); }
            catch (Exception e) { failure = e; }
        }
        if (failure != null)
        {
            var error = failure is System.Reflection.TargetInvocationException { InnerException: { } inner } ? inner : failure;
            frame = WorkerProtocol.FrameSpan(id, (byte)Reply.Error, (ref MessagePackWriter w) =>
            {
                w.WriteArrayHeader(2);
                w.Write(error.GetType().Name);
                w.Write(error.Message);
            });
        }
        _running.TryRemove(id, out _);
        source.Dispose();
        _output.Send(frame); // the frame lives in this thread's scratch buffer until the next is built: sent before anything else is
    }

    private static ReadOnlyMemory<byte> GradeRequest(int episode)
    {
        var buffer = new ArrayBufferWriter<byte>(8);
        var w = new MessagePackWriter(buffer);
        w.WriteArrayHeader(1);
        w.Write(episode);
        w.Flush();
        return buffer.WrittenMemory;
    }

    /// <summary>Whether a step ended its episode (set by the Step handler).</summary>
    private sealed class StepOutcome
    {
        public bool Done;
    }

    private async Task<WritePayload?> HandleAsync(Request kind, ReadOnlyMemory<byte> payload, StepOutcome outcome, CancellationToken ct)
    {
        var r = new MessagePackReader(payload);
        r.ReadArrayHeader();
        switch (kind)
        {
            case Request.DescribeFolder:
            case Request.DescribeAssembly:
            {
                string path = WorkerProtocol.Text(ref r);
                var (envs, error) = kind == Request.DescribeFolder ? PluginLoader.LoadFolder(path) : PluginLoader.LoadAssembly(path);
                foreach (var e in envs) _assemblies.GetOrAdd(e.AssemblyPath, _ => []).Add(e);
                return (ref MessagePackWriter w) =>
                {
                    w.WriteArrayHeader(2);
                    w.WriteArrayHeader(envs.Count);
                    foreach (var e in envs)
                    {
                        w.WriteArrayHeader(4);
                        w.Write(e.AssemblyPath);
                        w.Write(e.Type!.FullName);
                        w.Write(JsonSerializer.Serialize(e.Descriptor));
                        w.Write(typeof(IGroupGradedEnvironment).IsAssignableFrom(e.Type));
                    }
                    if (error == null) w.WriteNil();
                    else
                    {
                        w.WriteArrayHeader(2);
                        w.Write(error.Source);
                        w.Write(error.Error);
                    }
                };
            }
            case Request.Initialize:
            {
                int handle = r.ReadInt32();
                string assembly = WorkerProtocol.Text(ref r), type = WorkerProtocol.Text(ref r);
                int n = r.ReadMapHeader();
                var settings = new Dictionary<string, string>(n);
                for (int i = 0; i < n; i++) settings[WorkerProtocol.Text(ref r)] = WorkerProtocol.Text(ref r);
                string data = WorkerProtocol.Text(ref r);
                var offered = WorkerProtocol.ReadStrings(ref r);
                var plugin = Find(assembly, type);
                IEnvironment env = plugin.Create();
                var context = new EnvironmentContext(settings, data, _services.For(offered), new FrameLog(_output, handle));
                await env.InitializeAsync(context, ct);
                _environments[handle] = env;
                return null;
            }
            case Request.LoadTasks:
            {
                var env = EnvironmentOf(r.ReadInt32());
                var query = new TaskQuery(WorkerProtocol.Text(ref r), r.ReadInt32(), r.ReadInt32());
                var tasks = await env.LoadTasksAsync(query, ct);
                var handles = new int[tasks.Count];
                for (int i = 0; i < tasks.Count; i++)
                {
                    handles[i] = Interlocked.Decrement(ref _nextTask);
                    _tasks[handles[i]] = tasks[i];
                }
                var lines = tasks.Select(t => t.ToJsonLine()).ToArray();
                return (ref MessagePackWriter w) =>
                {
                    w.WriteArrayHeader(lines.Length);
                    for (int i = 0; i < lines.Length; i++)
                    {
                        w.WriteArrayHeader(2);
                        w.Write(handles[i]);
                        w.Write(lines[i]);
                    }
                };
            }
            case Request.Validate:
            {
                var env = EnvironmentOf(r.ReadInt32());
                var problems = env.ValidateTask(TaskOf(WorkerProtocol.ReadTaskRef(ref r)));
                return (ref MessagePackWriter w) => WorkerProtocol.WriteStrings(ref w, problems.ToList());
            }
            case Request.Open:
            {
                var env = EnvironmentOf(r.ReadInt32());
                var task = TaskOf(WorkerProtocol.ReadTaskRef(ref r));
                var context = new EpisodeContext(r.ReadInt32(), r.ReadInt32());
                var episode = await env.OpenEpisodeAsync(task, context, ct);
                int handle = Interlocked.Increment(ref _nextEpisode);
                _episodes[handle] = episode;
                // An episode that opens with the task's own messages and tools (most do) sends nil for them: the host has
                // the task already, and neither side pays for writing and reading them again.
                var opening = ReferenceEquals(episode.Opening, task.Input) ? null : episode.Opening;
                var tools = ReferenceEquals(episode.Tools, task.Tools) ? null : episode.Tools;
                return (ref MessagePackWriter w) =>
                {
                    w.WriteArrayHeader(3);
                    w.Write(handle);
                    if (opening == null) w.WriteNil();
                    else WorkerProtocol.WriteMessages(ref w, opening);
                    if (tools == null) w.WriteNil();
                    else WorkerProtocol.WriteTools(ref w, tools);
                };
            }
            case Request.Step:
            {
                var episode = EpisodeOf(r.ReadInt32());
                var result = await episode.StepAsync(WorkerProtocol.ReadTurn(ref r), ct);
                outcome.Done = result.Done;
                return (ref MessagePackWriter w) =>
                {
                    w.WriteArrayHeader(2);
                    w.Write(result.Done);
                    WorkerProtocol.WriteMessages(ref w, result.Reply);
                };
            }
            case Request.Grade:
            {
                var grade = await EpisodeOf(r.ReadInt32()).GradeAsync(ct)
                    ?? throw new InvalidOperationException("the grader returned no grade (null)");
                return (ref MessagePackWriter w) => WorkerProtocol.WriteGrade(ref w, grade);
            }
            case Request.GradeGroup:
            {
                var env = EnvironmentOf(r.ReadInt32()) as IGroupGradedEnvironment
                    ?? throw new InvalidOperationException("the environment does not grade groups");
                var task = TaskOf(WorkerProtocol.ReadTaskRef(ref r));
                var members = WorkerProtocol.ReadMembers(ref r);
                var grades = await env.GradeGroupAsync(task, members, ct) ?? throw new InvalidOperationException("the group grader returned no grades (null)");
                return (ref MessagePackWriter w) => WorkerProtocol.WriteGrades(ref w, grades);
            }
            default:
                throw new InvalidDataException($"unknown request kind {(byte)kind}");
        }
    }

    private PluginEnvironment Find(string assembly, string type)
    {
        if (!_assemblies.TryGetValue(assembly, out var found))
        {
            var (envs, error) = PluginLoader.LoadAssembly(assembly);
            if (error != null) throw new InvalidOperationException($"{error.Source}: {error.Error}");
            found = _assemblies.GetOrAdd(assembly, envs);
        }
        return found.FirstOrDefault(e => e.Type!.FullName == type) ?? throw new InvalidOperationException($"{assembly}: no environment class {type}");
    }

    private IEnvironment EnvironmentOf(int handle) =>
        _environments.TryGetValue(handle, out var env) ? env : throw new InvalidOperationException($"environment #{handle} is not initialized in this worker");

    private IEpisode EpisodeOf(int handle) =>
        _episodes.TryGetValue(handle, out var e) ? e : throw new InvalidOperationException($"episode #{handle} is not open in this worker");

    private TaskRecord TaskOf(TaskRef task) =>
        _tasks.TryGetValue(task.Handle, out var t) ? t : throw new InvalidOperationException($"task #{task.Handle} is not known to this worker");

    private static async Task DisposeQuietly(IEpisode episode)
    {
        try { await episode.DisposeAsync(); }
        catch { /* a plugin failing to clean up ends nothing but its own episode */ }
    }

    /// <summary>An environment's log lines go to the host, which prefixes and prints them.</summary>
    private sealed class FrameLog(IFrameSink output, int environment) : IEnvironmentLog
    {
        public void Write(string message) => output.Send(0, (byte)Reply.Log, (ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(2);
            w.Write(environment);
            w.Write(message);
        });
    }
}
