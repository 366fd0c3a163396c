namespace Nemotron.Gym.Sandbox;

/// <summary>
/// The unprivileged uids this process may run sandboxes as, one per concurrent sandbox. A uid is claimed
/// with an exclusive lock file, so two gym processes on one host (a silo and a test run, say) never
/// share one: RLIMIT_NPROC counts per uid, and the sweep after a run kills every process of its uid.
/// </summary>
internal sealed class UidSlots : IDisposable
{
    private const int RangeSize = 1000;
    private readonly List<FileStream> locks = [];
    private readonly List<int> free = [];
    private readonly SemaphoreSlim available;

    public int Count { get; }

    public UidSlots(string lockDirectory, int firstUid, int count)
    {
        Directory.CreateDirectory(lockDirectory);
        for (var uid = firstUid; uid < firstUid + RangeSize && free.Count < count; uid++)
        {
            // A uid whose lock another process holds is that process's.
            if (HostFileLock.TryTake(Path.Combine(lockDirectory, $"{uid}.lock")) is not { } held) continue;
            locks.Add(held);
            free.Add(uid);
        }
        if (free.Count == 0) throw new InvalidOperationException($"no free sandbox uid in {firstUid}..{firstUid + RangeSize - 1} (lock files in {lockDirectory})");
        Count = free.Count;
        All = free.ToHashSet();
        available = new SemaphoreSlim(Count, Count);
    }

    /// <summary>The uids free now.</summary>
    public IEnumerable<int> Claimed { get { lock (free) return free.ToArray(); } }

    /// <summary>Every uid this process holds, free or in use.</summary>
    public IReadOnlySet<int> All { get; private set; } = new HashSet<int>();

    /// <summary>Waits for a free uid; the most recently released one that <paramref name="prefer"/> accepts, else the most recently released.</summary>
    public async ValueTask<int> AcquireAsync(CancellationToken cancellation, Func<int, bool>? prefer = null)
    {
        await available.WaitAsync(cancellation);
        lock (free) return Take(prefer, required: false)!.Value;
    }

    /// <summary>Takes a free uid that <paramref name="accept"/> accepts without waiting; null when none is free now.</summary>
    public int? TryAcquire(Func<int, bool> accept)
    {
        if (!available.Wait(0)) return null;
        lock (free)
        {
            if (Take(accept, required: true) is { } uid) return uid;
        }
        available.Release();
        return null;
    }

    private int? Take(Func<int, bool>? prefer, bool required)
    {
        var index = prefer is null ? -1 : free.FindLastIndex(u => prefer(u));
        if (index < 0)
        {
            if (required) return null;
            index = free.Count - 1;
        }
        var uid = free[index];
        free.RemoveAt(index);
        return uid;
    }

    public void Release(int uid)
    {
        lock (free) free.Add(uid);
        available.Release();
    }

    /// <summary>Kills every process whose real uid is <paramref name="uid"/> (what a double-forked daemon would leave).</summary>
    public static int KillAllOf(int uid)
    {
        var killed = 0;
        for (var round = 0; round < 20; round++)
        {
            var found = 0;
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
                try
                {
                    foreach (var line in File.ReadLines(Path.Combine(dir, "status")))
                    {
                        // A zombie is already dead: its parent (or init) reaps it, and SIGKILL cannot hurry that.
                        if (line.StartsWith("State:\tZ", StringComparison.Ordinal)) break;
                        if (!line.StartsWith("Uid:", StringComparison.Ordinal)) continue;
                        var fields = line.Split('\t', StringSplitOptions.RemoveEmptyEntries);
                        if (fields.Length > 1 && int.TryParse(fields[1], out var realUid) && realUid == uid) { Native.Kill(pid); found++; }
                        break;
                    }
                }
                catch (IOException) { } // gone meanwhile
                catch (UnauthorizedAccessException) { }
            }
            if (found == 0) break;
            killed += found;
            Thread.Sleep(5);
        }
        return killed;
    }

    public void Dispose()
    {
        foreach (var stream in locks) stream.Dispose();
        locks.Clear();
    }
}
