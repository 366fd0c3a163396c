using System.Buffers;
using System.Buffers.Binary;
using MessagePack;
using MessagePack.Formatters;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Grains;

namespace Nemotron.Gym.PluginWorker;

/// <summary>What the host asks a worker to do (the byte after a request's id).</summary>
internal enum Request : byte
{
    /// <summary>[folder]: load a plugin folder and describe its environments → [[assembly, type, descriptor JSON]...], error or nil.</summary>
    DescribeFolder = 1,
    /// <summary>[assembly]: the same for one assembly.</summary>
    DescribeAssembly = 2,
    /// <summary>[env, assembly, type, {settings}, data folder, [service names]]: create and initialize an environment under the handle env.</summary>
    Initialize = 3,
    /// <summary>[env, split, count, seed] → [[task handle, task JSON]...].</summary>
    LoadTasks = 4,
    /// <summary>[env, task ref] → [problems].</summary>
    Validate = 5,
    /// <summary>[env, task ref, seed, sample] → [episode, opening, tools]; opening and tools are nil when they are the task's own.</summary>
    Open = 6,
    /// <summary>
    /// [episode, turn, grade id] → [done, reply]. A grade id other than 0 asks for the grade ahead: when the step ends the
    /// episode, the worker grades it at once, answers under the grade id as it would a Grade request, and closes the
    /// episode itself (no Grade or Dispose request follows); when it does not, nothing comes under that id.
    /// </summary>
    Step = 7,
    /// <summary>[episode] → grade.</summary>
    Grade = 8,
    /// <summary>[episode], no reply: the episode is over.</summary>
    Dispose = 9,
    /// <summary>[request id], no reply: cancel that request's token.</summary>
    Cancel = 10,
    /// <summary>[call id, payload]: the host's answer to a service call the worker made.</summary>
    ServiceReply = 11,
    /// <summary>[env, task ref, [group members]] → [grades]: a group-graded environment grades a whole group.</summary>
    GradeGroup = 12,
}

/// <summary>What a worker sends back (the byte after the request id).</summary>
internal enum Reply : byte
{
    /// <summary>The request succeeded; the payload is its result.</summary>
    Ok = 0,
    /// <summary>The request failed: [exception type name, message].</summary>
    Error = 1,
    /// <summary>Not a reply (id 0): [env, line] from an environment's log.</summary>
    Log = 2,
    /// <summary>Not a reply: [call id, service, method, payload]: the plugin calls a host service.</summary>
    ServiceCall = 3,
}

/// <summary>A task as the host sends it: a handle the worker already holds, or the handle with the task's JSON line.</summary>
/// <param name="Handle">The task's number in this worker.</param>
/// <param name="Json">The task as a JSONL line, when the worker does not hold it yet.</param>
internal readonly record struct TaskRef(int Handle, string? Json);

/// <summary>Writes the arguments or result of one frame.</summary>
internal delegate void WritePayload(ref MessagePackWriter writer);

/// <summary>
/// The channel between host and worker: frames of [length: 4 bytes][id: 4 bytes][kind: 1 byte][MessagePack payload],
/// little-endian. A request's id comes back on its reply, so any number of requests are in flight at once. Payloads
/// use the conversation types' formatters (the same as grain calls) and MessagePack's untrusted-data mode: the host
/// reads what a worker writes as untrusted, since the worker runs plugin code.
/// </summary>
internal static class WorkerProtocol
{
    /// <summary>The serializer options for payloads.</summary>
    public static readonly MessagePackSerializerOptions Options = MessagePackSerializerOptions.Standard
        .WithResolver(ConversationFormatters.Resolver).WithSecurity(MessagePackSecurity.UntrustedData);

    /// <summary>The largest frame either side accepts (a task set of a large split, say).</summary>
    public const int MaxFrameBytes = 512 << 20;

    private static readonly IMessagePackFormatter<IReadOnlyList<Message>> Messages = Options.Resolver.GetFormatterWithVerify<IReadOnlyList<Message>>();
    private static readonly IMessagePackFormatter<IReadOnlyList<ToolDefinition>> Tools = Options.Resolver.GetFormatterWithVerify<IReadOnlyList<ToolDefinition>>();
    private static readonly IMessagePackFormatter<AssistantTurn> Turns = Options.Resolver.GetFormatterWithVerify<AssistantTurn>();
    private static readonly IMessagePackFormatter<Grade> Grades = Options.Resolver.GetFormatterWithVerify<Grade>();
    private static readonly IMessagePackFormatter<IReadOnlyList<GroupMember>> Members = Options.Resolver.GetFormatterWithVerify<IReadOnlyList<GroupMember>>();
    private static readonly IMessagePackFormatter<IReadOnlyList<Grade>> GradeLists = Options.Resolver.GetFormatterWithVerify<IReadOnlyList<Grade>>();

    /// <summary>The bytes before a frame's payload: length, id, kind.</summary>
    public const int HeaderBytes = 9;

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_frameBuffer;

    /// <summary>
    /// One frame built in this thread's scratch buffer: valid until the thread builds the next one (a sink copies it
    /// into its batch at once, so sending a frame allocates nothing).
    /// </summary>
    public static ReadOnlySpan<byte> FrameSpan(int id, byte kind, WritePayload? payload)
    {
        var buffer = t_frameBuffer ??= new ArrayBufferWriter<byte>(1024);
        if (buffer.Capacity > 1 << 20) buffer = t_frameBuffer = new ArrayBufferWriter<byte>(1024); // a huge frame (a task set) is not kept for the thread's life
        buffer.ResetWrittenCount();
        buffer.Advance(HeaderBytes); // length, id, kind: filled in below
        if (payload != null)
        {
            var writer = new MessagePackWriter(buffer);
            payload(ref writer);
            writer.Flush();
        }
        var frame = System.Runtime.InteropServices.MemoryMarshal.AsMemory(buffer.WrittenMemory).Span;
        BinaryPrimitives.WriteInt32LittleEndian(frame, frame.Length - 4);
        BinaryPrimitives.WriteInt32LittleEndian(frame[4..], id);
        frame[8] = kind;
        return frame;
    }

    public static void WriteMessages(ref MessagePackWriter w, IReadOnlyList<Message> list) => Messages.Serialize(ref w, list, Options);
    public static IReadOnlyList<Message> ReadMessages(ref MessagePackReader r) => Messages.Deserialize(ref r, Options) ?? [];
    public static void WriteTools(ref MessagePackWriter w, IReadOnlyList<ToolDefinition> list) => Tools.Serialize(ref w, list, Options);
    public static IReadOnlyList<ToolDefinition> ReadTools(ref MessagePackReader r) => Tools.Deserialize(ref r, Options) ?? [];
    public static void WriteTurn(ref MessagePackWriter w, AssistantTurn turn) => Turns.Serialize(ref w, turn, Options);
    public static AssistantTurn ReadTurn(ref MessagePackReader r) => Turns.Deserialize(ref r, Options);
    public static void WriteGrade(ref MessagePackWriter w, Grade grade) => Grades.Serialize(ref w, grade, Options);
    public static Grade ReadGrade(ref MessagePackReader r) => Grades.Deserialize(ref r, Options);
    public static void WriteMembers(ref MessagePackWriter w, IReadOnlyList<GroupMember> members) => Members.Serialize(ref w, members, Options);
    public static IReadOnlyList<GroupMember> ReadMembers(ref MessagePackReader r) => Members.Deserialize(ref r, Options) ?? [];
    public static void WriteGrades(ref MessagePackWriter w, IReadOnlyList<Grade> grades) => GradeLists.Serialize(ref w, grades, Options);
    public static IReadOnlyList<Grade> ReadGrades(ref MessagePackReader r) => GradeLists.Deserialize(ref r, Options) ?? [];

    public static void WriteTaskRef(ref MessagePackWriter w, TaskRef task)
    {
        w.WriteArrayHeader(2);
        w.Write(task.Handle);
        w.Write(task.Json);
    }

    public static TaskRef ReadTaskRef(ref MessagePackReader r)
    {
        if (r.ReadArrayHeader() != 2) throw new MessagePackSerializationException("task ref: expected 2 fields");
        return new TaskRef(r.ReadInt32(), r.TryReadNil() ? null : r.ReadString());
    }

    public static string Text(ref MessagePackReader r) => r.ReadString() ?? throw new MessagePackSerializationException("expected a string, found nil");

    public static void WriteStrings(ref MessagePackWriter w, IReadOnlyCollection<string> list)
    {
        w.WriteArrayHeader(list.Count);
        foreach (var s in list) w.Write(s);
    }

    public static List<string> ReadStrings(ref MessagePackReader r)
    {
        int n = r.ReadArrayHeader();
        var list = new List<string>(Math.Min(n, 4096));
        for (int i = 0; i < n; i++) list.Add(Text(ref r));
        return list;
    }
}

/// <summary>Where frames go: queued for one channel, written in order.</summary>
internal interface IFrameSink
{
    /// <summary>Queues a frame; false when the channel is closed.</summary>
    bool Send(int id, byte kind, WritePayload? payload);
}

/// <summary>
/// Reads frames with blocking reads into one buffer: a read takes whatever the pipe holds (a burst of frames in one
/// system call), and <see cref="HasBufferedFrame"/> tells the reading loop whether the next frame is already here, so
/// that it sends what it made for the frames before (one write for a burst) only when it would otherwise wait.
/// Only one thread reads at a time (a loop that hands reading to another stops reading first).
/// </summary>
internal sealed class FrameReader(Stream stream)
{
    private byte[] _buffer = new byte[1 << 16];
    private int _start, _end;

    /// <summary>Whether a whole frame is buffered (reading it needs no system call).</summary>
    public bool HasBufferedFrame
    {
        get
        {
            int have = _end - _start;
            if (have < WorkerProtocol.HeaderBytes) return false;
            int length = BinaryPrimitives.ReadInt32LittleEndian(_buffer.AsSpan(_start));
            return length >= 5 && length <= WorkerProtocol.MaxFrameBytes && have >= 4 + length;
        }
    }

    /// <summary>The next frame (its payload copied out: a caller may keep it), or null at the end of the stream.</summary>
    public (int Id, byte Kind, ReadOnlyMemory<byte> Payload)? Read()
    {
        int got = Fill(WorkerProtocol.HeaderBytes);
        if (got == 0) return null;
        if (got < WorkerProtocol.HeaderBytes) throw new InvalidDataException($"the stream ended inside a frame header ({got} of {WorkerProtocol.HeaderBytes} bytes)");
        int length = BinaryPrimitives.ReadInt32LittleEndian(_buffer.AsSpan(_start));
        if (length < 5 || length > WorkerProtocol.MaxFrameBytes) throw new InvalidDataException($"a frame claims {length} bytes (expected 5..{WorkerProtocol.MaxFrameBytes})");
        int id = BinaryPrimitives.ReadInt32LittleEndian(_buffer.AsSpan(_start + 4));
        byte kind = _buffer[_start + 8];
        var payload = new byte[length - 5];
        int buffered = Math.Min(_end - _start - WorkerProtocol.HeaderBytes, payload.Length);
        _buffer.AsSpan(_start + WorkerProtocol.HeaderBytes, buffered).CopyTo(payload);
        _start += WorkerProtocol.HeaderBytes + buffered;
        if (buffered < payload.Length)
        {
            // The rest of a large frame goes straight into its payload, not through the buffer.
            int rest = stream.ReadAtLeast(payload.AsSpan(buffered), payload.Length - buffered, throwOnEndOfStream: false);
            if (rest < payload.Length - buffered) throw new InvalidDataException("the stream ended inside a frame");
        }
        if (_start == _end) _start = _end = 0;
        return (id, kind, payload);
    }

    /// <summary>Reads until at least <paramref name="need"/> bytes are buffered or the stream ends; returns what is buffered.</summary>
    private int Fill(int need)
    {
        if (_end - _start >= need) return _end - _start;
        if (_buffer.Length - _start < need)
        {
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }
        while (_end - _start < need)
        {
            int n = stream.Read(_buffer, _end, _buffer.Length - _end);
            if (n == 0) break;
            _end += n;
        }
        return _end - _start;
    }
}

/// <summary>
/// One side's output. Frames are copied into one buffer and written in order, in batches: while a reading loop works
/// through the frames that have already arrived it holds the output (<see cref="Hold"/>), and what it sends meanwhile
/// piles up; when nothing more is waiting to be read it releases the pile (<see cref="Release"/>), one write for the
/// burst. A frame sent while the output is not held (from another thread: a reply that completed later, a log line,
/// a service call, a new episode) is written together with whatever else came meanwhile.
/// <para>
/// Two ways to write. The worker's reading loop writes on release itself (writes block, and the host always reads),
/// and frames sent from elsewhere are written by a thread-pool item. The host's reading thread must never wait on a
/// write (a host waiting to write to a worker that waits to write to the host would stop both), so on the host a
/// writing thread of its own does every write: it sleeps until there is something to write, without the thread
/// pool's spinning between bursts (which cost the host a quarter of its CPU per episode when a pool item wrote).
/// </para>
/// </summary>
internal sealed class BatchingFrameWriter : IFrameSink
{
    private readonly object _gate = new();
    private readonly object _writeLock = new();
    private readonly Stream _stream;
    private readonly bool _writeOnRelease;
    private ArrayBufferWriter<byte> _frames = new(1 << 12);
    private ArrayBufferWriter<byte> _spare = new(1 << 12);
    private bool _held, _scheduled, _closed, _completed;

    /// <param name="stream">Where the frames go.</param>
    /// <param name="writeOnRelease">Whether <see cref="Release"/> writes on the calling thread (the worker); otherwise a writing thread named <paramref name="writer"/> does all writing (the host).</param>
    /// <param name="writer">The writing thread's name.</param>
    public BatchingFrameWriter(Stream stream, bool writeOnRelease, string writer = "frame writer")
    {
        _stream = stream;
        _writeOnRelease = writeOnRelease;
        if (!writeOnRelease) new Thread(WriteLoop) { IsBackground = true, Name = writer }.Start();
    }

    public bool Send(int id, byte kind, WritePayload? payload) => Send(WorkerProtocol.FrameSpan(id, kind, payload));

    /// <summary>Queues a frame that was built elsewhere.</summary>
    public bool Send(ReadOnlySpan<byte> frame)
    {
        bool queueWrite = false;
        lock (_gate)
        {
            if (_closed || _completed) return false;
            frame.CopyTo(_frames.GetSpan(frame.Length));
            _frames.Advance(frame.Length);
            if (!_held && !_scheduled)
            {
                _scheduled = true;
                if (_writeOnRelease) queueWrite = true;
                else Monitor.Pulse(_gate);
            }
        }
        if (queueWrite) ThreadPool.UnsafeQueueUserWorkItem(static w => w.WriteQueued(), this, preferLocal: false);
        return true;
    }

    /// <summary>Frames sent from now on wait for <see cref="Release"/>.</summary>
    public void Hold()
    {
        lock (_gate) _held = true;
    }

    /// <summary>Writes everything waiting (here or on the writing thread, see the constructor), and frames sent from now on are written as they come.</summary>
    public void Release()
    {
        lock (_gate)
        {
            _held = false;
            if (_frames.WrittenCount == 0) return;
            if (!_writeOnRelease)
            {
                if (!_scheduled)
                {
                    _scheduled = true;
                    Monitor.Pulse(_gate);
                }
                return;
            }
        }
        Write();
    }

    /// <summary>No more frames: what is queued is written, then the stream is closed (the other side reads its end).</summary>
    public void Complete()
    {
        lock (_gate)
        {
            if (_completed) return;
            _completed = true;
            _held = false;
            if (!_writeOnRelease)
            {
                Monitor.Pulse(_gate); // the writing thread writes what is left and closes the stream
                return;
            }
        }
        ThreadPool.UnsafeQueueUserWorkItem(static w => w.WriteAndClose(), this, preferLocal: false);
    }

    /// <summary>The host's writing thread: sleeps until there is something to write (or the end), writes it all in one go.</summary>
    private void WriteLoop()
    {
        while (true)
        {
            bool completed;
            lock (_gate)
            {
                while (!_scheduled && !_completed) Monitor.Wait(_gate);
                _scheduled = false;
                completed = _completed;
            }
            if (completed)
            {
                WriteAndClose(); // nothing can be sent any more: this writes the last of it
                return;
            }
            Write();
            lock (_gate)
                if (_closed) return;
        }
    }

    private void WriteAndClose()
    {
        Write();
        lock (_writeLock)
        {
            try { _stream.Dispose(); }
            catch (Exception e) when (e is IOException or ObjectDisposedException) { }
        }
    }

    private void WriteQueued()
    {
        lock (_gate) _scheduled = false;
        Write();
    }

    private void Write()
    {
        lock (_writeLock)
        {
            ArrayBufferWriter<byte> batch;
            lock (_gate)
            {
                if (_frames.WrittenCount == 0 || _closed) return;
                batch = _frames;
                _frames = _spare;
                _spare = batch;
            }
            try
            {
                _stream.Write(batch.WrittenSpan);
                _stream.Flush();
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                lock (_gate) _closed = true; // the other side is gone; its reader sees the end of its input next
            }
            // A huge batch (a task set) does not keep its buffer for the channel's life.
            if (batch.Capacity > 1 << 20) _spare = new ArrayBufferWriter<byte>(1 << 12);
            else batch.ResetWrittenCount();
        }
    }
}
