using System.Buffers;
using System.Buffers.Binary;
using System.Threading.Channels;
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
    /// <summary>[env, task ref, seed, sample] → [episode, opening, tools].</summary>
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

    /// <summary>One frame: id, kind and payload (the caller's writer fills the payload).</summary>
    public static byte[] Frame(int id, byte kind, WritePayload? payload)
    {
        // One buffer per thread, reused: a frame costs one allocation (the array that is queued), not a growing buffer each.
        var buffer = t_frameBuffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        buffer.Advance(HeaderBytes); // length, id, kind: filled in below
        if (payload != null)
        {
            var writer = new MessagePackWriter(buffer);
            payload(ref writer);
            writer.Flush();
        }
        var frame = buffer.WrittenSpan.ToArray();
        if (buffer.Capacity > 1 << 20) t_frameBuffer = null; // a huge frame (a task set) is not kept for the thread's life
        BinaryPrimitives.WriteInt32LittleEndian(frame, frame.Length - 4);
        BinaryPrimitives.WriteInt32LittleEndian(frame.AsSpan(4), id);
        frame[8] = kind;
        return frame;
    }

    /// <summary>Reads one frame: (id, kind, payload), or null at the end of the stream. <paramref name="header"/> is scratch space of <see cref="HeaderBytes"/>.</summary>
    public static async Task<(int Id, byte Kind, ReadOnlyMemory<byte> Payload)?> ReadAsync(Stream stream, byte[] header, CancellationToken cancellation)
    {
        int got = await ReadFullyAsync(stream, header, cancellation);
        if (got == 0) return null;
        if (got < HeaderBytes) throw new InvalidDataException($"the stream ended inside a frame header ({got} of {HeaderBytes} bytes)");
        int length = BinaryPrimitives.ReadInt32LittleEndian(header);
        if (length < 5 || length > MaxFrameBytes) throw new InvalidDataException($"a frame claims {length} bytes (expected 5..{MaxFrameBytes})");
        var payload = new byte[length - 5];
        if (await ReadFullyAsync(stream, payload, cancellation) < payload.Length) throw new InvalidDataException("the stream ended inside a frame");
        return (BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4)), header[8], payload);
    }

    /// <summary>The same as <see cref="ReadAsync"/> with blocking reads, for a thread that does nothing else.</summary>
    public static (int Id, byte Kind, ReadOnlyMemory<byte> Payload)? Read(Stream stream, byte[] header)
    {
        int got = stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
        if (got == 0) return null;
        if (got < HeaderBytes) throw new InvalidDataException($"the stream ended inside a frame header ({got} of {HeaderBytes} bytes)");
        int length = BinaryPrimitives.ReadInt32LittleEndian(header);
        if (length < 5 || length > MaxFrameBytes) throw new InvalidDataException($"a frame claims {length} bytes (expected 5..{MaxFrameBytes})");
        var payload = new byte[length - 5];
        if (stream.ReadAtLeast(payload, payload.Length, throwOnEndOfStream: false) < payload.Length) throw new InvalidDataException("the stream ended inside a frame");
        return (BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4)), header[8], payload);
    }

    private static async ValueTask<int> ReadFullyAsync(Stream stream, byte[] buffer, CancellationToken cancellation)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = await stream.ReadAsync(buffer.AsMemory(total), cancellation);
            if (n == 0) break;
            total += n;
        }
        return total;
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
    bool Send(byte[] frame);
}

/// <summary>
/// Writes frames from any thread through one loop that drains everything queued before it flushes, so frames that
/// arrive together (thousands of episodes finishing at once) leave in one write instead of one system call each.
/// Sending never blocks: the host's side, where callers are grain turns.
/// </summary>
internal sealed class FrameWriter : IFrameSink
{
    private readonly Channel<byte[]> _queue = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Stream _stream;

    public FrameWriter(Stream stream)
    {
        _stream = stream;
        Completion = Task.Run(LoopAsync);
    }

    /// <summary>Ends when the stream fails or <see cref="Complete"/> was called and everything queued is written.</summary>
    public Task Completion { get; }

    /// <summary>Queues a frame; false when the writer has stopped.</summary>
    public bool Send(byte[] frame) => _queue.Writer.TryWrite(frame);

    /// <summary>No more frames.</summary>
    public void Complete() => _queue.Writer.TryComplete();

    private async Task LoopAsync()
    {
        var buffer = new BufferedStream(_stream, 1 << 16);
        try
        {
            while (await _queue.Reader.WaitToReadAsync())
            {
                while (_queue.Reader.TryRead(out var frame)) await buffer.WriteAsync(frame);
                await buffer.FlushAsync();
            }
        }
        catch (IOException) { _queue.Writer.TryComplete(); }
        catch (ObjectDisposedException) { _queue.Writer.TryComplete(); }
    }
}

/// <summary>
/// The worker's side of its output. Frames are written in order, in batches: while the read loop works through the
/// requests that have already arrived it holds the output (<see cref="Hold"/>), and the replies it makes inline pile
/// up; when nothing more is waiting to be read it releases them in one write (<see cref="Release"/>). A frame sent
/// from elsewhere (a reply that completed later, a log line, a service call) while the output is not held is written
/// by a thread-pool item. Writes block: the host always reads a worker's output.
/// </summary>
internal sealed class BatchingFrameWriter(Stream stream) : IFrameSink
{
    private readonly object _gate = new();
    private readonly object _writeLock = new();
    private readonly BufferedStream _stream = new(stream, 1 << 16);
    private List<byte[]> _frames = [];
    private List<byte[]> _spare = [];
    private bool _held, _scheduled, _closed;

    public bool Send(byte[] frame)
    {
        bool schedule;
        lock (_gate)
        {
            if (_closed) return false;
            _frames.Add(frame);
            schedule = !_held && !_scheduled;
            if (schedule) _scheduled = true;
        }
        if (schedule) ThreadPool.UnsafeQueueUserWorkItem(static w => w.WriteQueued(), this, preferLocal: false);
        return true;
    }

    /// <summary>Frames sent from now on wait for <see cref="Release"/>.</summary>
    public void Hold()
    {
        lock (_gate) _held = true;
    }

    /// <summary>Writes everything waiting, and frames sent from now on are written as they come.</summary>
    public void Release()
    {
        lock (_gate) _held = false;
        Write();
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
            List<byte[]> batch;
            lock (_gate)
            {
                if (_frames.Count == 0 || _closed) return;
                batch = _frames;
                _frames = _spare;
                _spare = batch;
            }
            try
            {
                foreach (var frame in batch) _stream.Write(frame);
                _stream.Flush();
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                lock (_gate) _closed = true; // the host is gone; the read loop sees the end of its input next
            }
            batch.Clear();
        }
    }
}
