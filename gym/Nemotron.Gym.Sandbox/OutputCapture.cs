using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Sandbox;

/// <summary>
/// Keeps the first <c>cap</c> bytes of a stream. Past the cap it raises <see cref="Exceeded"/> once, so
/// the sandbox can kill the writer at once instead of draining an endless stream.
/// </summary>
internal sealed class OutputCapture(long cap)
{
    private readonly MemoryStream kept = new();
    private long total;

    /// <summary>Raised once, the first time the stream goes past the cap.</summary>
    public event Action? Exceeded;

    public bool Truncated => total > cap;

    /// <summary>Adds bytes read from the stream; returns false once the cap is passed (stop reading).</summary>
    public bool Add(ReadOnlySpan<byte> bytes)
    {
        var room = cap - kept.Length;
        if (room > 0) kept.Write(bytes[..(int)Math.Min(room, bytes.Length)]);
        var before = total;
        total += bytes.Length;
        if (total > cap && before <= cap) Exceeded?.Invoke();
        return total <= cap;
    }

    /// <summary>
    /// Reads a stream to its end. Past the cap the bytes are drained and dropped rather than left unread:
    /// the writer is being killed, and an engine that waits for a container's output to drain before it
    /// reports the exit (Docker does) must not wait on us.
    /// </summary>
    public async Task ReadAsync(Stream stream)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await stream.ReadAsync(buffer);
                if (read == 0) return;
                Add(buffer.AsSpan(0, read));
            }
        }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
    }

    public SandboxOutput ToOutput() => new(kept.ToArray(), Truncated);
}
