namespace Nemotron.Gym.Sandbox;

/// <summary>
/// Exclusive locks between processes on one host: a file opened with <see cref="FileShare.None"/>, which .NET holds
/// with flock, so the kernel releases it when the holder dies. Uid slots, image builds and engine starts use them.
/// </summary>
internal static class HostFileLock
{
    /// <summary>The lock on <paramref name="path"/>, or null while another process holds it.</summary>
    public static FileStream? TryTake(string path)
    {
        try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException) { return null; }
    }

    /// <summary>Waits up to <paramref name="timeout"/> for the lock on <paramref name="path"/>.</summary>
    /// <exception cref="IOException">Another process still held it at the end.</exception>
    public static async Task<FileStream> TakeAsync(string path, TimeSpan timeout, CancellationToken cancellation)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            if (TryTake(path) is { } held) return held;
            if (waited.Elapsed >= timeout) throw new IOException($"{path}: still locked by another process after {timeout.TotalSeconds:0} s");
            await Task.Delay(100, cancellation);
        }
    }
}
