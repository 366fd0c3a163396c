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
    private readonly BatchingFrameWriter _input;
    private readonly FrameReader _replies;
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inlineCall; // the number of the reply whose caller runs on the reading thread now; 0 when none
    private int _nextInline;
    private int _watched;    // the inline reply the watchdog saw last time
    private int _ticks;
    private readonly ConcurrentDictionary<int, PendingCall> _pending = new();
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

    /// <summary>Ends when the process has ended and every waiting call has been failed (their callers go on on the thread pool).</summary>
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
        _input = new BatchingFrameWriter(process.StandardInput.BaseStream, writeOnRelease: false, $"plugin worker writer {name}");
        _replies = new FrameReader(process.StandardOutput.BaseStream);
        Services = new ServiceHost(this);
        _ = Task.Run(ReadStderrAsync);
        Exited = _exited.Task;
        WorkerWatchdog.Add(this);
        StartReading();
    }

    /// <summary>
    /// Replies are read on a thread of their own with blocking reads (a read that waits for the worker costs no
    /// thread-pool work item), and each reply's caller goes on on that thread (see <see cref="ReadLoop"/>).
    /// </summary>
    private void StartReading() => new Thread(() =>
    {
        try
        {
            if (ReadLoop()) _exited.TrySetResult();
        }
        catch (Exception e) { _exited.TrySetException(e); } // whoever awaits Exited sees it
    }) { IsBackground = true, Name = $"plugin worker reader {Name}" }.Start();

    /// <summary>
    /// Runs every <see cref="WorkerWatchdog.PeriodMs"/>. Every fifth time it ends the waits of calls past their time
    /// limit (one scan instead of a timer per call). And a caller that has held the reading thread for a whole period
    /// (it blocks, or computes) loses it: reading goes on in a new thread (the requests its callers made so far are
    /// written first), and the old thread ends when its caller returns to it.
    /// </summary>
    internal void Watch()
    {
        if (++_ticks % 5 == 0 && !_pending.IsEmpty)
        {
            long now = Environment.TickCount64;
            foreach (var (id, call) in _pending)
                if (Volatile.Read(ref call.Deadline) <= now)
                    Expire(id, call, new TimeoutException($"{call.Label} did not finish within its time limit"));
        }
        int running = Volatile.Read(ref _inlineCall);
        if (running == 0 || running != _watched)
        {
            _watched = running;
            return;
        }
        if (Interlocked.CompareExchange(ref _inlineCall, 0, running) != running) return; // it returned just now
        _input.Release();
        StartReading();
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
    /// Sends a request and waits for its reply, at most <paramref name="limit"/> (then TimeoutException; null: no
    /// limit). When the limit passes or <paramref name="cancellation"/> fires the call returns at once; the worker is
    /// asked to cancel, and if it has not answered within <paramref name="killGrace"/> it is killed: a plugin thread
    /// that ignores cancellation cannot be stopped any other way.
    /// </summary>
    public Task<ReadOnlyMemory<byte>> CallAsync(Request kind, WritePayload payload, string what, TimeSpan killGrace, CancellationToken cancellation, TimeSpan? limit = null) =>
        CallAsync(kind, payload, new CallLabel(what, Named: false), killGrace, cancellation, limit);

    /// <summary>
    /// The same, for a call of an environment or episode: <paramref name="label"/> names the call, task and
    /// environment in the message of a call lost with its worker (formatted only then). No async state of its own: the
    /// caller awaits the reply's task itself.
    /// </summary>
    public Task<ReadOnlyMemory<byte>> CallAsync(Request kind, WritePayload payload, CallLabel label, TimeSpan killGrace, CancellationToken cancellation, TimeSpan? limit = null)
    {
        int id;
        PendingCall call;
        try { id = Expect(out call, label); }
        catch (EpisodeLostException e) { return Task.FromException<ReadOnlyMemory<byte>>(new EpisodeLostException(label.Lost(e.Message))); }
        Interlocked.Increment(ref _requestsSent);
        bool sent;
        try { sent = _input.Send(id, (byte)kind, payload); }
        catch
        {
            Forget(id);
            throw;
        }
        if (!sent || _deathReason != null)
        {
            Forget(id);
            return Task.FromException<ReadOnlyMemory<byte>>(new EpisodeLostException(label.Lost($"plugin worker {Name} is gone ({_deathReason ?? "its input is closed"})")));
        }
        return AwaitAsync(id, call, killGrace, cancellation, limit);
    }

    /// <summary>
    /// Registers a reply under a new id before any request names it: a request can carry a second id for an answer the
    /// worker sends on its own (the grade it starts when a step ends the episode). <see cref="Forget"/> drops it.
    /// </summary>
    public int Expect(out PendingCall call, CallLabel label = default)
    {
        if (_deathReason is { } dead) throw new EpisodeLostException($"plugin worker {Name} is gone ({dead})");
        int id = Interlocked.Increment(ref _nextId);
        call = new PendingCall { Label = label };
        _pending[id] = call;
        Interlocked.Increment(ref _inFlight);
        // The read loop fails what is waiting once, when the process has ended: a reply registered after that would wait forever.
        if (_deathReason is { } died && _pending.TryRemove(id, out _))
        {
            Interlocked.Decrement(ref _inFlight);
            call.TrySetException(new EpisodeLostException(label.Lost($"plugin worker {Name} {died}")));
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
    /// The reply registered under <paramref name="id"/>, waited for at most <paramref name="limit"/> from now (null: no
    /// limit). Past the limit the wait ends with TimeoutException, and when <paramref name="cancellation"/> fires with
    /// OperationCanceledException, at once; the worker is asked to cancel that call, and if it has not answered within
    /// <paramref name="killGrace"/> it is killed: a plugin thread that ignores cancellation cannot be stopped any other way.
    /// No timer per call (the watchdog's scan ends the waits past their deadline), and no task beside the reply's own.
    /// </summary>
    public Task<ReadOnlyMemory<byte>> AwaitAsync(int id, PendingCall call, TimeSpan killGrace, CancellationToken cancellation, TimeSpan? limit)
    {
        if (call.Task.IsCompleted) return call.Task; // a grade made ahead is usually here already
        call.Id = id;
        call.KillGrace = killGrace;
        call.Owner = this;
        if (limit is { } l && l != Timeout.InfiniteTimeSpan) Volatile.Write(ref call.Deadline, Environment.TickCount64 + (long)Math.Ceiling(l.TotalMilliseconds));
        if (cancellation.CanBeCanceled)
        {
            call.Registration = cancellation.UnsafeRegister(static (state, token) =>
            {
                var c = (PendingCall)state!;
                c.Owner!.Expire(c.Id, c, new OperationCanceledException(token));
            }, call);
            // A reply read before the registration was stored could not drop it: drop it here, or a long-lived token keeps the call.
            if (call.Task.IsCompleted) call.Registration.Unregister();
        }
        return call.Task;
    }

    /// <summary>
    /// Ends the wait for a call that ran past its limit or was cancelled by its caller (once), asks the worker to cancel
    /// it, and kills the worker if it has not answered within the call's grace.
    /// </summary>
    private void Expire(int id, PendingCall call, Exception failure)
    {
        if (Interlocked.Exchange(ref call.Expired, 1) != 0 || call.Task.IsCompleted) return;
        Volatile.Write(ref call.Deadline, long.MaxValue);
        call.Registration.Unregister();
        // Before the caller is released: once it goes on, this worker must already count as awaiting its kill, or the
        // caller's next episode can be opened on it (WorkerPool.Next).
        Abandon(id, call.Label.ToString(), call.KillGrace);
        // On the thread pool: the caller goes on from there, not on the timer's thread or inside the canceller's Cancel().
        ThreadPool.UnsafeQueueUserWorkItem(static x => x.Call.TrySetException(x.Failure), (Call: call, Failure: failure), preferLocal: false);
    }

    /// <summary>
    /// Gives up on the call under <paramref name="id"/>: the worker is asked to cancel it, and killed if it has not
    /// answered within <paramref name="killGrace"/>.
    /// </summary>
    public void Abandon(int id, string what, TimeSpan killGrace)
    {
        if (!Alive) return;
        Send(Request.Cancel, (ref MessagePackWriter w) => w.Write(id));
        Interlocked.Increment(ref _awaitingKill);
        _ = KillIfStillRunning(id, what, killGrace);
    }

    private async Task KillIfStillRunning(int id, string what, TimeSpan grace)
    {
        try
        {
            _hostLog($"plugin worker {Name}: {what} was cancelled; waiting {grace.TotalSeconds:0.#}s for it to stop");
            await Task.Delay(grace);
            // Its reply (an answer, or the error of a call that stopped) took it out of the waiting calls.
            if (_pending.ContainsKey(id))
                Kill($"killed: {what} ran past its time limit and did not stop within {grace.TotalSeconds:0.#}s of being cancelled");
        }
        finally { Interlocked.Decrement(ref _awaitingKill); }
    }

    private int _awaitingKill;

    /// <summary>
    /// Whether a cancelled call of this worker is still within its grace: the worker may be killed any moment, with every
    /// episode on it, so its pool opens new episodes elsewhere while it can (<see cref="WorkerPool.Next"/>).
    /// </summary>
    public bool AwaitingKill => Volatile.Read(ref _awaitingKill) > 0;

    /// <summary>Sends a request that has no reply.</summary>
    public void Send(Request kind, WritePayload payload)
    {
        Interlocked.Increment(ref _requestsSent);
        _input.Send(0, (byte)kind, payload);
    }

    /// <summary>Requests sent to this worker so far (calls and one-way requests such as Dispose and Cancel).</summary>
    public long RequestsSent => Interlocked.Read(ref _requestsSent);

    /// <summary>Sends a frame that is not a request (service replies).</summary>
    public void SendFrame(int id, byte kind, WritePayload payload) => _input.Send(id, kind, payload);

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

    /// <summary>
    /// Reads replies until the worker's output ends, then fails what still waits and cleans up (true); or stops when
    /// the watchdog has handed reading to another thread (false). A reply's caller goes on on this thread, up to its
    /// next wait: for a caller that awaits one call after another (an episode's open, step, grade) no thread-pool work
    /// item is involved, and the requests that callers make while a burst of replies is handled are held and leave in
    /// one write when the burst is done. A caller that holds the thread too long loses it to a new reading thread (see
    /// <see cref="Watch"/>). Writing is never done here: a reading thread that waited on a full pipe to a worker that
    /// waits on a full pipe to the host would stop both.
    /// </summary>
    private bool ReadLoop()
    {
        string? protocolError = null;
        try
        {
            _input.Hold();
            while (true)
            {
                (int Id, byte Kind, ReadOnlyMemory<byte> Payload)? next;
                if (_replies.HasBufferedFrame) next = _replies.Read();
                else
                {
                    _input.Release(); // what the callers asked for so far goes now, before this thread waits
                    next = _replies.Read();
                    _input.Hold();
                }
                if (next is not { } frame) break;
                if (!Handle(frame.Id, frame.Kind, frame.Payload)) return false;
            }
        }
        catch (Exception e) when (e is InvalidDataException or MessagePackSerializationException or IOException or EndOfStreamException)
        {
            // The worker runs plugin code: whatever it writes is untrusted, and a broken frame ends it.
            protocolError = $"it broke the channel protocol ({e.Message})";
            Kill(protocolError);
        }
        _input.Release();
        WorkerWatchdog.Remove(this);
        _process.WaitForExit();
        string reason = _killReason ?? protocolError ?? ExitDescription(_process.ExitCode);
        string tail;
        lock (_stderrTail) tail = string.Join(" | ", _stderrTail.TakeLast(6));
        _deathReason = tail.Length > 0 && _killReason == null ? $"{reason}; its last output: {tail}" : reason;
        _input.Complete();
        foreach (var id in _pending.Keys)
            if (_pending.TryRemove(id, out var waiting))
            {
                // On the thread pool: a caller that goes on to block must not keep the others from hearing of the death.
                var lost = new EpisodeLostException(waiting.Label.Lost($"plugin worker {Name} {_deathReason}"));
                ThreadPool.UnsafeQueueUserWorkItem(static x => x.Waiting.TrySetException(x.Lost), (Waiting: waiting, Lost: lost), preferLocal: false);
            }
        Services.Dispose();
        _process.Dispose();
        return true;
    }

    /// <summary>Handles one frame from the worker; false when this thread has lost reading to a new one meanwhile.</summary>
    private bool Handle(int id, byte kind, ReadOnlyMemory<byte> payload)
    {
        switch ((Reply)kind)
        {
            case Reply.Ok:
                if (_pending.TryRemove(id, out var ok))
                {
                    Interlocked.Decrement(ref _inFlight);
                    ok.Registration.Unregister();
                    return CompleteHere(ok, payload, null);
                }
                return true;
            case Reply.Error:
                if (_pending.TryRemove(id, out var failed))
                {
                    Interlocked.Decrement(ref _inFlight);
                    failed.Registration.Unregister();
                    return CompleteHere(failed, default, ReadError(payload));
                }
                return true;
            case Reply.Log:
                var r = new MessagePackReader(payload);
                r.ReadArrayHeader();
                int env = r.ReadInt32();
                string line = WorkerProtocol.Text(ref r);
                if (_logs.TryGetValue(env, out var log)) log.Write(line);
                return true;
            case Reply.ServiceCall:
                Services.Handle(id, payload);
                return true;
            default:
                throw new InvalidDataException($"unknown reply kind {kind}");
        }
    }

    /// <summary>Completes a call on this thread (its caller goes on here) under the watchdog; false when reading moved to another thread meanwhile.</summary>
    private bool CompleteHere(PendingCall call, ReadOnlyMemory<byte> payload, Exception? error)
    {
        int mark = Interlocked.Increment(ref _nextInline);
        if (mark == 0) mark = Interlocked.Increment(ref _nextInline); // 0 means none
        Volatile.Write(ref _inlineCall, mark);
        if (error == null) call.TrySetResult(payload);
        else call.TrySetException(error);
        return Interlocked.CompareExchange(ref _inlineCall, 0, mark) == mark;
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

/// <summary>
/// A request waiting for its reply. Completed on the reading thread, where the caller goes on at once (see
/// WorkerProcess.ReadLoop); a wait that ends early (limit, cancellation) completes it with that failure, and a reply
/// that comes later is dropped.
/// </summary>
internal sealed class PendingCall : TaskCompletionSource<ReadOnlyMemory<byte>>
{
    /// <summary>When the wait ends (Environment.TickCount64); long.MaxValue while there is no limit.</summary>
    public long Deadline = long.MaxValue;
    /// <summary>1 once its wait was ended early.</summary>
    public int Expired;
    /// <summary>Its id, once a caller waits for it.</summary>
    public int Id;
    /// <summary>What it is, for messages.</summary>
    public CallLabel Label;
    public TimeSpan KillGrace;
    /// <summary>The caller's token's hold on it (dropped when the reply comes).</summary>
    public CancellationTokenRegistration Registration;
    public WorkerProcess? Owner;
}

/// <summary>Names a call for messages, formatted only when one is needed (a call's failure, a log line), never per call.</summary>
/// <param name="What">The call: "step", "grade", "open episode", "load tasks (train)".</param>
/// <param name="TaskId">The task it concerns, if any.</param>
/// <param name="Environment">The environment's name, if the message should name it.</param>
/// <param name="Named">Whether a lost call's message starts with the call's name (not for the pool's own calls: describe, initialize).</param>
internal readonly record struct CallLabel(string? What, string? TaskId = null, string? Environment = null, bool Named = true)
{
    /// <summary>"step of task 7", as in the host's log.</summary>
    public override string ToString() => TaskId != null ? $"{What} of task {TaskId}" : What ?? "a call";

    /// <summary>The message of a call lost with its worker: environment, task and call, then <paramref name="reason"/>.</summary>
    public string Lost(string reason) => !Named || What == null ? reason
        : $"{(Environment != null ? $"environment '{Environment}', " : "")}{(TaskId != null ? $"task {TaskId}: " : "")}{What}: {reason}";
}

/// <summary>
/// One thread that runs the watchdog of every worker of this process (<see cref="WorkerProcess.Watch"/>) every
/// <see cref="PeriodMs"/>. A thread of its own that sleeps between rounds, not a timer: a timer's callback wakes a
/// thread-pool thread, which then spins looking for more work before it sleeps, 50 times a second per worker.
/// </summary>
internal static class WorkerWatchdog
{
    /// <summary>How long a caller may hold a reading thread before reading moves to a new thread (checked at this period, so up to twice it).</summary>
    public const int PeriodMs = 20;

    private static readonly List<WorkerProcess> Watched = [];
    private static Thread? s_thread;

    public static void Add(WorkerProcess worker)
    {
        lock (Watched)
        {
            Watched.Add(worker);
            if (s_thread == null)
            {
                s_thread = new Thread(Run) { IsBackground = true, Name = "plugin worker watchdog" };
                s_thread.Start();
            }
        }
    }

    public static void Remove(WorkerProcess worker)
    {
        lock (Watched) Watched.Remove(worker);
    }

    private static void Run()
    {
        var round = new List<WorkerProcess>();
        while (true)
        {
            Thread.Sleep(PeriodMs);
            lock (Watched)
            {
                round.Clear();
                round.AddRange(Watched);
            }
            foreach (var worker in round)
            {
                // One worker's trouble (a host log callback that throws, say) must not stop the watch over the others.
                try { worker.Watch(); }
                catch (Exception e) { Console.Error.WriteLine($"plugin worker watchdog: {worker.Name}: {e.GetType().Name}: {e.Message}"); }
            }
        }
    }
}
