using Nemotron.Gym.Abstractions;

namespace Nemotron.Gym.Sandbox;

/// <summary>
/// What every backend's session shares: one call at a time (a turn), a closed flag, and the files API over the
/// session's scratch folder, which both backends bind into the sandbox at /work.
/// </summary>
internal abstract class ScratchSession(ScratchFolder scratch) : ISandboxSession
{
    /// <summary>Held by every call, so commands, file transfers, resets and disposal never overlap.</summary>
    protected readonly SemaphoreSlim turn = new(1, 1);
    /// <summary>Set once by <see cref="DisposeAsync"/>, under the turn.</summary>
    protected bool disposed;
    /// <summary>The session's scratch folder.</summary>
    protected ScratchFolder Scratch => scratch;

    public abstract ValueTask<SandboxResult> ExecAsync(SandboxCommand command, CancellationToken cancellation);
    public abstract ValueTask<SandboxStatus> ResetAsync(CancellationToken cancellation);
    public abstract ValueTask DisposeAsync();

    public async ValueTask<SandboxStatus> PutFilesAsync(IReadOnlyList<SandboxFile> files, CancellationToken cancellation)
    {
        await turn.WaitAsync(cancellation);
        try { return disposed ? SandboxStatus.Failed("the session is closed") : scratch.Put(files); }
        finally { turn.Release(); }
    }

    public async ValueTask<SandboxFileRead> GetFileAsync(string path, long maxBytes, CancellationToken cancellation)
    {
        await turn.WaitAsync(cancellation);
        try { return disposed ? new(null, false, "the session is closed") : scratch.Get(path, maxBytes); }
        finally { turn.Release(); }
    }
}
