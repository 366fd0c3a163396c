using System.Text;

namespace Nemotron.Gym.Abstractions;

/// <summary>
/// Runs untrusted programs (model-written code, tests of it) in isolation: no network, a read-only root
/// filesystem holding only an image's interpreter and libraries, a writable scratch folder, no
/// capabilities, a non-root user, and hard limits. An environment gets it with
/// <c>context.Services.Get&lt;ISandboxService&gt;()</c> and must cope with null (no sandbox configured:
/// grade without running code, or report that it cannot grade).
/// <para>
/// Every call returns a value: a program that crashes, hangs, floods its output or tries to escape gives
/// a <see cref="SandboxResult"/> with the matching <see cref="SandboxOutcome"/>, and a broken sandbox
/// (daemon gone, image missing) gives <see cref="SandboxOutcome.SandboxError"/>. The caller's
/// cancellation token ends a run early (its processes are killed; the outcome is
/// <see cref="SandboxOutcome.Killed"/>). Implementations are safe to call concurrently.
/// </para>
/// </summary>
public interface ISandboxService
{
    /// <summary>Which backend runs the programs ("bwrap", "docker").</summary>
    string Backend { get; }

    /// <summary>
    /// Runs one program in a fresh sandbox: writes <see cref="SandboxRunRequest.Files"/> into the scratch
    /// folder, starts the command there with the given stdin, waits for it within the limits, and
    /// throws everything away afterwards.
    /// </summary>
    ValueTask<SandboxResult> RunAsync(SandboxRunRequest request, CancellationToken cancellation);

    /// <summary>
    /// Opens a long-lived sandbox for a multi-step agent: its scratch folder keeps files between
    /// commands. Never throws for a sandbox failure: a session that could not be opened answers every
    /// call with <see cref="SandboxOutcome.SandboxError"/> and the reason.
    /// </summary>
    ValueTask<ISandboxSession> OpenSessionAsync(SandboxSessionOptions options, CancellationToken cancellation);
}

/// <summary>
/// A long-lived sandbox. Commands run one at a time (calls made concurrently wait their turn); no
/// process started by one command survives to the next. Dispose it when the episode ends.
/// </summary>
public interface ISandboxSession : IAsyncDisposable
{
    /// <summary>Runs a command in the session's scratch folder (the working directory).</summary>
    ValueTask<SandboxResult> ExecAsync(SandboxCommand command, CancellationToken cancellation);

    /// <summary>Writes files into the scratch folder (paths relative to it; see <see cref="SandboxFile"/>).</summary>
    ValueTask<SandboxStatus> PutFilesAsync(IReadOnlyList<SandboxFile> files, CancellationToken cancellation);

    /// <summary>Reads a file from the scratch folder, at most <paramref name="maxBytes"/> of it.</summary>
    ValueTask<SandboxFileRead> GetFileAsync(string path, long maxBytes, CancellationToken cancellation);

    /// <summary>Empties the scratch folder and ends every process, as if the session were new.</summary>
    ValueTask<SandboxStatus> ResetAsync(CancellationToken cancellation);
}

/// <summary>
/// The limits of one run. Every limit is enforced by the sandbox from outside the program (a program
/// cannot lift them); a run that hits one is ended and reported with the matching outcome.
/// </summary>
/// <param name="WallTime">Real time from start to end; the whole process tree is killed when it passes.</param>
/// <param name="CpuTime">CPU time of all the run's processes together (per process where the backend cannot sum them).</param>
/// <param name="MemoryBytes">Memory of the run, with no swap around it.</param>
/// <param name="Processes">Processes and threads the run may have at once.</param>
/// <param name="FileSizeBytes">Largest file the run may write; also the size of its scratch folder.</param>
/// <param name="OpenFiles">Open file descriptors per process.</param>
/// <param name="OutputBytes">Bytes kept of stdout and of stderr each; a run that writes more is ended with <see cref="SandboxOutcome.OutputLimit"/>.</param>
public sealed record SandboxLimits(
    TimeSpan WallTime,
    TimeSpan CpuTime,
    long MemoryBytes,
    int Processes,
    long FileSizeBytes,
    int OpenFiles,
    long OutputBytes)
{
    /// <summary>10 s wall, 10 s CPU, 256 MiB, 64 processes, 16 MiB files, 256 descriptors, 1 MiB of each output.</summary>
    public static SandboxLimits Default { get; } = new(
        TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10), 256L << 20, 64, 16L << 20, 256, 1L << 20);

    /// <summary>The problems with these limits (empty when every limit is positive and within what a sandbox can enforce).</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (WallTime <= TimeSpan.Zero) problems.Add($"wall_time must be positive (got {WallTime})");
        if (CpuTime <= TimeSpan.Zero) problems.Add($"cpu_time must be positive (got {CpuTime})");
        if (MemoryBytes < 16L << 20) problems.Add($"memory must be at least 16 MiB (got {MemoryBytes} bytes)");
        if (Processes < 1) problems.Add($"processes must be at least 1 (got {Processes})");
        if (FileSizeBytes < 1) problems.Add($"file_size must be positive (got {FileSizeBytes})");
        if (OpenFiles is < 16 or > 20000) problems.Add($"open_files must be within 16..20000 (got {OpenFiles})");
        if (OutputBytes < 1) problems.Add($"output must be positive (got {OutputBytes})");
        return problems;
    }
}

/// <summary>
/// A file to place in the scratch folder. The path is relative to the scratch folder, uses '/', and may
/// not be absolute, contain "..", or pass through a symbolic link: such a path is refused, never followed.
/// </summary>
/// <param name="Path">Relative path ("main.py", "tests/input.txt").</param>
/// <param name="Content">The bytes.</param>
/// <param name="Executable">Whether the file gets the execute bit.</param>
public sealed record SandboxFile(string Path, byte[] Content, bool Executable = false)
{
    /// <summary>A UTF-8 text file.</summary>
    public static SandboxFile Text(string path, string text, bool executable = false) => new(path, Encoding.UTF8.GetBytes(text), executable);
}

/// <summary>One command inside a sandbox.</summary>
/// <param name="Argv">Program and arguments, looked up on the image's PATH ("python3", "main.py").</param>
/// <param name="Stdin">Bytes fed to standard input (then it is closed); null for an empty stdin.</param>
/// <param name="Limits">Limits of this command; null for the service's defaults. In a session, memory, process
/// and file limits are those the session was opened with; wall time, CPU time and output come from here.</param>
public sealed record SandboxCommand(IReadOnlyList<string> Argv, byte[]? Stdin = null, SandboxLimits? Limits = null);

/// <summary>A one-shot run: files, then one command.</summary>
/// <param name="Command">What to run.</param>
/// <param name="Files">Files written into the scratch folder first.</param>
/// <param name="Image">The image whose root filesystem the program sees ("python").</param>
public sealed record SandboxRunRequest(SandboxCommand Command, IReadOnlyList<SandboxFile>? Files = null, string Image = "python");

/// <summary>How a long-lived sandbox is set up.</summary>
/// <param name="Image">The image ("python").</param>
/// <param name="Limits">Memory, process and file limits for the session's life, and the default for its commands.</param>
public sealed record SandboxSessionOptions(string Image = "python", SandboxLimits? Limits = null);

/// <summary>How a run ended.</summary>
public enum SandboxOutcome
{
    /// <summary>The program ended by itself (any exit code, or a signal it brought on itself, such as a segfault).</summary>
    Ok,
    /// <summary>It ran past its wall-time or CPU-time limit and was killed.</summary>
    Timeout,
    /// <summary>It ran out of memory (killed by the memory limit, or an allocation refused by it).</summary>
    MemoryLimit,
    /// <summary>It wrote more than the output limit to stdout or stderr and was killed.</summary>
    OutputLimit,
    /// <summary>It was ended from outside for another reason: the caller cancelled, or the sandbox was torn down.</summary>
    Killed,
    /// <summary>The sandbox itself failed (backend missing, daemon gone, image absent): says nothing about the program.</summary>
    SandboxError,
}

/// <summary>Captured bytes of one output stream.</summary>
/// <param name="Bytes">What was kept: at most the output limit, from the start of the stream.</param>
/// <param name="Truncated">Whether the program wrote more than was kept.</param>
public sealed record SandboxOutput(byte[] Bytes, bool Truncated)
{
    /// <summary>An empty stream.</summary>
    public static SandboxOutput Empty { get; } = new([], false);

    /// <summary>The bytes as UTF-8; invalid sequences become U+FFFD (programs may write any bytes).</summary>
    public string Text => Encoding.UTF8.GetString(Bytes);
}

/// <summary>What a run did. Always a value: see <see cref="Outcome"/> first.</summary>
/// <param name="Outcome">How it ended.</param>
/// <param name="ExitCode">The exit code when the program exited; null when a signal ended it or it never ran.</param>
/// <param name="Signal">The signal that ended the program (9 for SIGKILL, ...); null when it exited.</param>
/// <param name="Stdout">Standard output.</param>
/// <param name="Stderr">Standard error.</param>
/// <param name="WallTime">Real time it ran.</param>
/// <param name="CpuTime">CPU time of all its processes; null when the backend could not measure it.</param>
/// <param name="PeakMemoryBytes">Largest memory use; null when the backend could not measure it.</param>
/// <param name="Detail">Why: for a limit, which limit; for a sandbox error, what failed. Null when there is nothing to add.</param>
public sealed record SandboxResult(
    SandboxOutcome Outcome,
    int? ExitCode,
    int? Signal,
    SandboxOutput Stdout,
    SandboxOutput Stderr,
    TimeSpan WallTime,
    TimeSpan? CpuTime,
    long? PeakMemoryBytes,
    string? Detail)
{
    /// <summary>Whether the program ended by itself with exit code 0.</summary>
    public bool Succeeded => Outcome == SandboxOutcome.Ok && ExitCode == 0;

    /// <summary>A result for a sandbox failure, before or instead of running anything.</summary>
    public static SandboxResult Failure(string detail, TimeSpan wallTime = default) =>
        new(SandboxOutcome.SandboxError, null, null, SandboxOutput.Empty, SandboxOutput.Empty, wallTime, null, null, detail);
}

/// <summary>Whether a file or reset operation worked.</summary>
/// <param name="Ok">True when it did.</param>
/// <param name="Error">What went wrong (a refused path, a sandbox failure), when it did not.</param>
public sealed record SandboxStatus(bool Ok, string? Error)
{
    /// <summary>Success.</summary>
    public static SandboxStatus Success { get; } = new(true, null);

    /// <summary>A failure with its reason.</summary>
    public static SandboxStatus Failed(string error) => new(false, error);
}

/// <summary>A file read back from a sandbox.</summary>
/// <param name="Content">Its bytes (at most the requested maximum), or null when it could not be read.</param>
/// <param name="Truncated">Whether the file is longer than what was returned.</param>
/// <param name="Error">Why it could not be read (missing, refused path, sandbox failure).</param>
public sealed record SandboxFileRead(byte[]? Content, bool Truncated, string? Error);

/// <summary>Text shaping for what goes back to a model from a sandbox.</summary>
public static class SandboxText
{
    /// <summary>The default size of text shown to a model: about 10 KB.</summary>
    public const int DefaultModelChars = 10_000;

    /// <summary>
    /// Keeps the head and the tail of a long text (the start says what ran, the end says how it failed)
    /// and puts a marker saying how much was left out between them. Text within the limit comes back as is.
    /// </summary>
    /// <param name="text">The text (stdout, stderr, a traceback).</param>
    /// <param name="maxChars">Most characters returned, marker included.</param>
    public static string TrimForModel(string text, int maxChars = DefaultModelChars)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxChars, 100);
        if (text.Length <= maxChars) return text;
        // The marker's own length depends on the count it shows; reserve room for the widest count.
        var reserve = $"\n[... {text.Length} characters omitted ...]\n".Length;
        var keep = maxChars - reserve;
        var head = keep / 2;
        var tail = keep - head;
        // Never split a surrogate pair: a lone half would make the text invalid.
        if (head > 0 && char.IsHighSurrogate(text[head - 1])) head--;
        if (tail > 0 && char.IsLowSurrogate(text[text.Length - tail])) tail--;
        var omitted = text.Length - head - tail;
        return string.Concat(text.AsSpan(0, head), $"\n[... {omitted} characters omitted ...]\n", text.AsSpan(text.Length - tail));
    }
}
