using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using MessagePack;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Plugins;

namespace Nemotron.Gym.PluginWorker;

/// <summary>
/// One running worker process as the host sees it: requests go out with an id, replies are matched by id, so calls of
/// many episodes share the channel. When the process ends (exit, crash, kill) every call still waiting fails with
/// <see cref="EpisodeLostException"/> naming the cause, and everything the worker held (environments, tasks,
/// episodes) is gone with it: the next call goes to a new process.
/// </summary>
internal sealed class WorkerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly FrameWriter _input;
    private readonly ConcurrentDictionary<int, TaskCompletionSource<ReadOnlyMemory<byte>>> _pending = new();
    private readonly ConcurrentDictionary<int, IEnvironmentLog> _logs = new();
    private readonly LinkedList<string> _stderrTail = new();
    private readonly Action<string> _hostLog;
    private int _nextId;
    private int _inFlight;
    private long _requestsSent;
    private int _nextHandle;
    private volatile string? _deathReason;
    private string? _killReason;

    /// <summary>Service objects this worker may call, by handle (see <see cref="ServiceHost"/>).</summary>
    public ServiceHost Services { get; }

    /// <summary>The tasks this worker holds, with the handle each has here.</summary>
    public ConditionalWeakTable<TaskRecord, SentTask> Tasks { get; } = new();

    /// <summary>A short name for messages: plugin, slot and process id.</summary>
    public string Name { get; }

    /// <summary>Ends when the process has ended and every waiting call has failed.</summary>
    public Task Exited { get; }

    /// <summary>False once the process has ended or been killed.</summary>
    public bool Alive => _deathReason == null;

    /// <summary>Why the process ended (null while it runs).</summary>
    public string? DeathReason => _deathReason;

    private WorkerProcess(Process process, string name, Action<string> hostLog)
    {
        _process = process;
        Name = name;
        _hostLog = hostLog;
        _input = new FrameWriter(process.StandardInput.BaseStream);
        Services = new ServiceHost(this);
        _ = Task.Run(ReadStderrAsync);
        // Replies are read on a thread of their own with blocking reads: a read that waits on the pipe costs no
        // thread-pool work item, and each read's frames are handed on from there (see ReadLoop).
        var exited = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Exited = exited.Task;
        new Thread(() =>
        {
            try
            {
                ReadLoop();
                exited.TrySetResult();
            }
            catch (Exception e) { exited.TrySetException(e); } // as the read loop's task did: whoever awaits Exited sees it
        }) { IsBackground = true, Name = $"plugin worker reader {name}" }.Start();
    }

    /// <summary>Starts a worker; <paramref name="start"/> comes from <see cref="WorkerLaunch"/>.</summary>
    public static WorkerProcess Start(ProcessStartInfo start, string name, Action<string> hostLog)
    {
        start.RedirectStandardInput = start.RedirectStandardOutput = start.RedirectStandardError = true;
        start.UseShellExecute = false;
        Process process;
        try { process = Launcher.Start(start); }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new EnvironmentCallException($"plugin worker {name}: cannot start '{start.FileName}': {e.Message}", e);
        }
        return new WorkerProcess(process, $"{name} (pid {process.Id})", hostLog);
    }

    /// <summary>A fresh handle for an object in this worker (environment, task, service object).</summary>
    public int NewHandle() => Interlocked.Increment(ref _nextHandle);

    /// <summary>Routes an environment's log lines.</summary>
    public void AddLog(int environment, IEnvironmentLog log) => _logs[environment] = log;

    /// <summary>
    /// Sends a request and waits for its reply. When <paramref name="cancellation"/> fires the call returns at once
    /// (OperationCanceledException); the worker is asked to cancel, and if it has not answered within
    /// <paramref name="killGrace"/> it is killed: a plugin thread that ignores cancellation cannot be stopped any other way.
    /// </summary>
    public async Task<ReadOnlyMemory<byte>> CallAsync(Request kind, WritePayload payload, string what, TimeSpan killGrace, CancellationToken cancellation)
    {
        int id = Expect(out var reply);
        Interlocked.Increment(ref _requestsSent);
        if (!_input.Send(WorkerProtocol.Frame(id, (byte)kind, payload)) || _deathReason != null)
        {
            Forget(id);
            throw new EpisodeLostException($"plugin worker {Name} is gone ({_deathReason ?? "its input is closed"})");
        }
        return await AwaitAsync(id, reply, what, killGrace, cancellation);
    }

    /// <summary>
    /// Registers a reply under a new id before any request names it: a request can carry a second id for an answer the
    /// worker sends on its own (the grade it starts when a step ends the episode). <see cref="Forget"/> drops it.
    /// </summary>
    public int Expect(out Task<ReadOnlyMemory<byte>> reply)
    {
        if (_deathReason is { } dead) throw new EpisodeLostException($"plugin worker {Name} is gone ({dead})");
        int id = Interlocked.Increment(ref _nextId);
        var source = new TaskCompletionSource<ReadOnlyMemory<byte>>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = source;
        Interlocked.Increment(ref _inFlight);
        reply = source.Task;
        // The read loop fails what is waiting once, when the process has ended: a reply registered after that would wait forever.
        if (_deathReason is { } died && _pending.TryRemove(id, out _))
        {
            Interlocked.Decrement(ref _inFlight);
            source.TrySetException(new EpisodeLostException($"plugin worker {Name} {died}"));
        }
        return id;
    }

    /// <summary>No longer waits for the reply registered under <paramref name="id"/> (one that comes anyway is dropped).</summary>
    public void Forget(int id)
    {
        if (_pending.TryRemove(id, out _)) Interlocked.Decrement(ref _inFlight);
    }

    /// <summary>Calls waiting for their replies now: how busy this worker is (the pool sends new episodes to the least busy).</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>
    /// Waits for the reply registered under <paramref name="id"/>. When <paramref name="cancellation"/> fires the wait
    /// ends at once (OperationCanceledException); the worker is asked to cancel that call, and if it has not answered
    /// within <paramref name="killGrace"/> it is killed: a plugin thread that ignores cancellation cannot be stopped any other way.
    /// </summary>
    public async Task<ReadOnlyMemory<byte>> AwaitAsync(int id, Task<ReadOnlyMemory<byte>> reply, string what, TimeSpan killGrace, CancellationToken cancellation)
    {
        if (reply.IsCompleted) return await reply; // a grade made ahead is usually here already
        try { return await reply.WaitAsync(cancellation); }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            Abandon(id, reply, what, killGrace);
            throw;
        }
    }

    /// <summary>
    /// Gives up on the call under <paramref name="id"/>: the worker is asked to cancel it, and killed if it has not
    /// answered within <paramref name="killGrace"/>.
    /// </summary>
    public void Abandon(int id, Task reply, string what, TimeSpan killGrace)
    {
        if (!Alive) return;
        Send(Request.Cancel, (ref MessagePackWriter w) => w.Write(id));
        _ = KillIfStillRunning(reply, id, what, killGrace);
    }

    private async Task KillIfStillRunning(Task reply, int id, string what, TimeSpan grace)
    {
        _hostLog($"plugin worker {Name}: {what} was cancelled; waiting {grace.TotalSeconds:0.#}s for it to stop");
        await Task.WhenAny(reply, Task.Delay(grace));
        if (!reply.IsCompleted && _pending.ContainsKey(id))
            Kill($"killed: {what} ran past its time limit and did not stop within {grace.TotalSeconds:0.#}s of being cancelled");
    }

    /// <summary>Sends a request that has no reply.</summary>
    public void Send(Request kind, WritePayload payload)
    {
        Interlocked.Increment(ref _requestsSent);
        _input.Send(WorkerProtocol.Frame(0, (byte)kind, payload));
    }

    /// <summary>Requests sent to this worker so far (calls and one-way requests such as Dispose and Cancel).</summary>
    public long RequestsSent => Interlocked.Read(ref _requestsSent);

    /// <summary>Sends a frame as it is (service replies).</summary>
    public void SendFrame(byte[] frame) => _input.Send(frame);

    /// <summary>Ends the process; waiting calls fail with <paramref name="reason"/>.</summary>
    public void Kill(string reason)
    {
        Interlocked.CompareExchange(ref _killReason, reason, null);
        _hostLog($"plugin worker {Name}: {reason}");
        try { _process.Kill(entireProcessTree: true); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Already gone, or a part of its tree could not be signalled: the process itself still must go.
            try { _process.Kill(); } catch (Exception again) when (again is InvalidOperationException or System.ComponentModel.Win32Exception) { }
            _hostLog($"plugin worker {Name}: kill: {e.GetType().Name}: {e.Message}");
        }
    }

    private void ReadLoop()
    {
        string? protocolError = null;
        try
        {
            var stream = new BufferedStream(_process.StandardOutput.BaseStream, 1 << 16); // a burst of replies in one read
            var header = new byte[WorkerProtocol.HeaderBytes];
            while (WorkerProtocol.Read(stream, header) is { } frame)
            {
                switch ((Reply)frame.Kind)
                {
                    case Reply.Ok:
                        if (_pending.TryRemove(frame.Id, out var ok))
                        {
                            Interlocked.Decrement(ref _inFlight);
                            ok.TrySetResult(frame.Payload);
                        }
                        break;
                    case Reply.Error:
                        if (_pending.TryRemove(frame.Id, out var failed))
                        {
                            Interlocked.Decrement(ref _inFlight);
                            failed.TrySetException(ReadError(frame.Payload));
                        }
                        break;
                    case Reply.Log:
                        var r = new MessagePackReader(frame.Payload);
                        r.ReadArrayHeader();
                        int env = r.ReadInt32();
                        string line = WorkerProtocol.Text(ref r);
                        if (_logs.TryGetValue(env, out var log)) log.Write(line);
                        break;
                    case Reply.ServiceCall:
                        Services.Handle(frame.Id, frame.Payload);
                        break;
                    default:
                        throw new InvalidDataException($"unknown reply kind {frame.Kind}");
                }
            }
        }
        catch (Exception e) when (e is InvalidDataException or MessagePackSerializationException or IOException or EndOfStreamException)
        {
            // The worker runs plugin code: whatever it writes is untrusted, and a broken frame ends it.
            protocolError = $"it broke the channel protocol ({e.Message})";
            Kill(protocolError);
        }
        _process.WaitForExit();
        string reason = _killReason ?? protocolError ?? ExitDescription(_process.ExitCode);
        string tail;
        lock (_stderrTail) tail = string.Join(" | ", _stderrTail.TakeLast(6));
        _deathReason = tail.Length > 0 && _killReason == null ? $"{reason}; its last output: {tail}" : reason;
        _input.Complete();
        foreach (var id in _pending.Keys)
            if (_pending.TryRemove(id, out var waiting))
                waiting.TrySetException(new EpisodeLostException($"plugin worker {Name} {_deathReason}"));
        Services.Dispose();
        _process.Dispose();
    }

    /// <summary>Words for an exit code, naming the usual cause of each.</summary>
    internal static string ExitDescription(int code) => code switch
    {
        0 => "exited with code 0 (the plugin called Environment.Exit?)",
        134 => "died of SIGABRT (exit 134: a stack overflow, or an abort)",
        137 => "was killed by SIGKILL (exit 137: out of memory, or killed from outside)",
        139 => "died of SIGSEGV (exit 139)",
        > 128 and < 160 => $"died of signal {code - 128} (exit {code})",
        _ => $"exited with code {code}",
    };

    private static Exception ReadError(ReadOnlyMemory<byte> payload)
    {
        var r = new MessagePackReader(payload);
        r.ReadArrayHeader();
        string type = WorkerProtocol.Text(ref r), message = WorkerProtocol.Text(ref r);
        return type is nameof(OperationCanceledException) or nameof(TaskCanceledException)
            ? new OperationCanceledException(message)
            : new PluginFaultException(type, message);
    }

    private async Task ReadStderrAsync()
    {
        try
        {
            while (await _process.StandardError.ReadLineAsync() is { } line)
            {
                if (line.Length > 500) line = line[..500] + "…";
                lock (_stderrTail)
                {
                    _stderrTail.AddLast(line);
                    if (_stderrTail.Count > 40) _stderrTail.RemoveFirst();
                }
                _hostLog($"[worker {Name}] {line}");
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException) { }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _input.Complete();
        // Closing its input ends a healthy worker; one that does not end at once is killed (plugins have no shutdown
        // step to wait for, and a host that stops on Ctrl-C has about two seconds before it is reported as killed).
        if (await Task.WhenAny(Exited, Task.Delay(TimeSpan.FromMilliseconds(200))) != Exited) Kill("stopped with its host");
        await Exited;
    }
}

/// <summary>A task the host has sent to (or received from) one worker, and whether its JSON is on the way.</summary>
internal sealed class SentTask(int handle)
{
    /// <summary>Its handle in that worker.</summary>
    public int Handle { get; } = handle;
    /// <summary>Set once the frame carrying its JSON is queued (only then may a request name the handle alone).</summary>
    public TaskCompletionSource Queued { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// Starts processes from one thread that lives as long as this process. bubblewrap's --die-with-parent (the kernel's
/// parent-death signal) fires when the THREAD that started it ends, not the process: a worker started from a
/// thread-pool thread would be killed whenever the pool retires that thread.
/// </summary>
internal static class Launcher
{
    private static readonly System.Collections.Concurrent.BlockingCollection<(ProcessStartInfo Start, TaskCompletionSource<Process> Started)> Queue = new();

    static Launcher()
    {
        var thread = new Thread(() =>
        {
            foreach (var (start, started) in Queue.GetConsumingEnumerable())
            {
                try { started.SetResult(Process.Start(start) ?? throw new InvalidOperationException("Process.Start returned null")); }
                catch (Exception e) { started.SetException(e); }
            }
        }) { IsBackground = true, Name = "plugin worker launcher" };
        thread.Start();
    }

    /// <summary>Starts a process from the launcher thread and waits for it to be started.</summary>
    public static Process Start(ProcessStartInfo start)
    {
        var started = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
        Queue.Add((start, started));
        return started.Task.GetAwaiter().GetResult();
    }
}
