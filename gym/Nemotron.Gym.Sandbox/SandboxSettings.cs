using System.Globalization;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Sandbox;

/// <summary>
/// How a host runs sandboxes: the <c>sandbox:</c> section of a run configuration
/// (<c>backend: bwrap | docker</c>, <c>docker.endpoint</c>, ...), with defaults that need no set-up
/// beyond bubblewrap and a built image.
/// </summary>
public sealed record SandboxSettings
{
    /// <summary>"bwrap" (default) or "docker".</summary>
    public string Backend { get; init; } = "bwrap";

    /// <summary>Where built images live, one folder per image (its manifest, root filesystem and tar).</summary>
    public string ImagesDirectory { get; init; } = "/var/lib/nemotron-gym/sandbox-images";

    /// <summary>Where scratch folders are mounted on the host (each a small tmpfs of its own).</summary>
    public string ScratchDirectory { get; init; } = "/run/nemotron-gym-sandbox";

    /// <summary>Names this host's sandboxes (a label on each container; the reaper removes only its own).</summary>
    public string SiloName { get; init; } = "local";

    /// <summary>Sandboxes that may run at once in this process (bwrap: one uid each).</summary>
    public int Slots { get; init; } = Math.Max(4, Environment.ProcessorCount * 4);

    /// <summary>bwrap: the first of the unprivileged uids handed to slots (a range of 1000 from here).</summary>
    public int FirstUid { get; init; } = 61000;

    /// <summary>
    /// bwrap: how many slots keep a warm sandbox between one-shot runs (a run in one costs a fork and an exec instead
    /// of new namespaces); -1 for two per core, at most <see cref="Slots"/>; 0 for none (every run cold).
    /// </summary>
    public int WarmSlots { get; init; } = -1;

    /// <summary>The number of warm slots <see cref="WarmSlots"/> asks for on this machine.</summary>
    public int EffectiveWarmSlots => WarmSlots >= 0 ? Math.Min(WarmSlots, Slots) : Math.Min(Slots, 2 * Environment.ProcessorCount);

    /// <summary>Limits of a command that sets none.</summary>
    public SandboxLimits Limits { get; init; } = SandboxLimits.Default;

    /// <summary>docker: the engine's endpoint (unix:///path or tcp://host:port); the private engine of <c>gym sandbox docker start</c> by default.</summary>
    public string DockerEndpoint { get; init; } = PrivateDockerDaemon.DefaultEndpoint;

    /// <summary>docker: the OCI runtime ("runsc" for gVisor); null for the engine's default (runc).</summary>
    public string? DockerRuntime { get; init; }

    /// <summary>docker: how often the reaper removes this silo's containers that no sandbox owns any more.</summary>
    public TimeSpan ReaperPeriod { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Admission control: sandboxes a host runs at once (0: two per core, bounded by memory and by <see cref="Slots"/>).</summary>
    public int Concurrency { get; init; }

    /// <summary>Admission control: callers that may wait for a place; one more is refused at once (a sandbox error).</summary>
    public int QueueCapacity { get; init; } = 1024;

    /// <summary>Admission control: the longest a caller waits for a place before it is refused (a sandbox error).</summary>
    public TimeSpan QueueWait { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>The concurrency admission control uses: <see cref="Concurrency"/>, or the machine's when that is 0.</summary>
    public int EffectiveConcurrency => Math.Min(Slots, Concurrency > 0 ? Concurrency : SandboxAdmission.ConcurrencyFor(Limits.MemoryBytes));

    /// <summary>
    /// Reads settings from flat keys as they appear under <c>sandbox:</c> (<c>backend</c>, <c>docker.endpoint</c>,
    /// <c>docker.runtime</c>, <c>images</c>, <c>scratch</c>, <c>silo</c>, <c>slots</c>, <c>first_uid</c>, <c>warm_slots</c>,
    /// <c>wall_time_s</c>, <c>cpu_time_s</c>, <c>memory_mb</c>, <c>processes</c>, <c>file_size_mb</c>,
    /// <c>open_files</c>, <c>output_kb</c>, <c>concurrency</c>, <c>queue_capacity</c>, <c>queue_wait_s</c>). <paramref name="source"/> names the file for errors.
    /// </summary>
    public static SandboxSettings FromValues(IReadOnlyDictionary<string, string> values, string source)
    {
        var settings = new SandboxSettings();
        var limits = settings.Limits;
        foreach (var (key, value) in values)
        {
            string Where() => $"{source}: sandbox.{key}";
            int Int(int min, int max)
            {
                if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < min || n > max)
                    throw new FormatException($"{Where()} = '{value}': expected a whole number in {min}..{max}");
                return n;
            }
            double Number(double min, double max)
            {
                if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n < min || n > max)
                    throw new FormatException($"{Where()} = '{value}': expected a number in {min}..{max}");
                return n;
            }
            switch (key)
            {
                case "backend":
                    if (value is not ("bwrap" or "docker")) throw new FormatException($"{Where()} = '{value}': expected bwrap or docker");
                    settings = settings with { Backend = value };
                    break;
                case "docker.endpoint": settings = settings with { DockerEndpoint = value }; break;
                case "docker.runtime": settings = settings with { DockerRuntime = value is "" or "runc" ? null : value }; break;
                case "images": settings = settings with { ImagesDirectory = value }; break;
                case "scratch": settings = settings with { ScratchDirectory = value }; break;
                case "silo": settings = settings with { SiloName = value }; break;
                case "slots": settings = settings with { Slots = Int(1, 1000) }; break;
                case "first_uid": settings = settings with { FirstUid = Int(1000, 4_000_000) }; break;
                case "warm_slots": settings = settings with { WarmSlots = Int(-1, 1000) }; break;
                case "wall_time_s": limits = limits with { WallTime = TimeSpan.FromSeconds(Number(0.01, 86400)) }; break;
                case "cpu_time_s": limits = limits with { CpuTime = TimeSpan.FromSeconds(Number(0.01, 86400)) }; break;
                case "memory_mb": limits = limits with { MemoryBytes = (long)Int(16, 1 << 20) << 20 }; break;
                case "processes": limits = limits with { Processes = Int(1, 100_000) }; break;
                case "file_size_mb": limits = limits with { FileSizeBytes = (long)Int(1, 1 << 20) << 20 }; break;
                case "open_files": limits = limits with { OpenFiles = Int(16, 20000) }; break;
                case "output_kb": limits = limits with { OutputBytes = (long)Int(1, 1 << 20) << 10 }; break;
                case "concurrency": settings = settings with { Concurrency = Int(0, 1000) }; break;
                case "queue_capacity": settings = settings with { QueueCapacity = Int(0, 1_000_000) }; break;
                case "queue_wait_s": settings = settings with { QueueWait = TimeSpan.FromSeconds(Number(0, 86400)) }; break;
                default: throw new FormatException($"{Where()}: unknown setting (known: backend, docker.endpoint, docker.runtime, images, scratch, silo, slots, first_uid, warm_slots, wall_time_s, cpu_time_s, memory_mb, processes, file_size_mb, open_files, output_kb, concurrency, queue_capacity, queue_wait_s)");
            }
        }
        return settings with { Limits = limits };
    }
}
