using System.Globalization;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Sandbox;
using Nemotron.Gym.Training.Config;

namespace Nemotron.Gym.Runs;

/// <summary>
/// The run config's <c>sandbox:</c> section: how the run's silos run model-written code. Every key is optional; the
/// keys and their checks are those of <see cref="SandboxSettings.FromValues"/> (one parser for `gym rl` and `gym sandbox`).
/// </summary>
public sealed class RunSandboxSection : IValidatedConfig
{
    /// <summary>bwrap (default), docker, or none (the run's silos offer no sandbox).</summary>
    public string? Backend { get; set; }
    /// <summary>docker: endpoint and runtime.</summary>
    public RunDockerSection? Docker { get; set; }
    /// <summary>Where built images live.</summary>
    public string? Images { get; set; }
    /// <summary>Where scratch folders are mounted.</summary>
    public string? Scratch { get; set; }
    /// <summary>The label of this silo's sandboxes (default: the run id).</summary>
    public string? Silo { get; set; }
    /// <summary>bwrap: uid slots.</summary>
    public int? Slots { get; set; }
    /// <summary>bwrap: the first uid of the slots.</summary>
    public int? FirstUid { get; set; }
    /// <summary>Default limits of a command that sets none.</summary>
    public double? WallTimeS { get; set; }
    /// <summary>CPU seconds.</summary>
    public double? CpuTimeS { get; set; }
    /// <summary>Memory in MiB (no swap around it).</summary>
    public int? MemoryMb { get; set; }
    /// <summary>Processes.</summary>
    public int? Processes { get; set; }
    /// <summary>File size (and scratch size) in MiB.</summary>
    public int? FileSizeMb { get; set; }
    /// <summary>Open files.</summary>
    public int? OpenFiles { get; set; }
    /// <summary>Output per stream in KiB.</summary>
    public int? OutputKb { get; set; }
    /// <summary>Admission control: sandboxes at once (0: from cores and memory).</summary>
    public int? Concurrency { get; set; }
    /// <summary>Admission control: callers that may wait.</summary>
    public int? QueueCapacity { get; set; }
    /// <summary>Admission control: the longest wait in seconds.</summary>
    public double? QueueWaitS { get; set; }

    /// <summary>The flat keys <see cref="SandboxSettings.FromValues"/> reads.</summary>
    public Dictionary<string, string> Values()
    {
        var values = new Dictionary<string, string>();
        void Put(string key, object? value)
        {
            if (value is not null) values[key] = Convert.ToString(value, CultureInfo.InvariantCulture)!;
        }
        Put("backend", Backend == "none" ? null : Backend);
        Put("docker.endpoint", Docker?.Endpoint);
        Put("docker.runtime", Docker?.Runtime);
        Put("images", Images);
        Put("scratch", Scratch);
        Put("silo", Silo);
        Put("slots", Slots);
        Put("first_uid", FirstUid);
        Put("wall_time_s", WallTimeS);
        Put("cpu_time_s", CpuTimeS);
        Put("memory_mb", MemoryMb);
        Put("processes", Processes);
        Put("file_size_mb", FileSizeMb);
        Put("open_files", OpenFiles);
        Put("output_kb", OutputKb);
        Put("concurrency", Concurrency);
        Put("queue_capacity", QueueCapacity);
        Put("queue_wait_s", QueueWaitS);
        return values;
    }

    /// <summary>The settings, with the silo label defaulting to <paramref name="runId"/>.</summary>
    public SandboxSettings Settings(string runId, string source)
    {
        var settings = SandboxSettings.FromValues(Values(), source);
        return Silo is null ? settings with { SiloName = runId } : settings;
    }

    /// <inheritdoc />
    public void Validate(string path)
    {
        try { SandboxSettings.FromValues(Values(), "config"); }
        catch (FormatException e) { throw new ConfigException(e.Message.Replace("config: sandbox.", path + ".", StringComparison.Ordinal)); }
    }

    /// <summary>
    /// The silo's sandbox options for a run: a <c>sandbox:</c> section makes the sandbox required (the run stops at
    /// start when it cannot run); without one the silo tries the default backend and goes on without it if it cannot;
    /// <c>backend: none</c> gives null (no sandbox).
    /// </summary>
    public static SiloSandboxOptions? For(RunSandboxSection? section, string runId) => section switch
    {
        null => new(new SandboxSettings { SiloName = runId }, Required: false),
        { Backend: "none" } => null,
        _ => new(section.Settings(runId, "config"), Required: true),
    };
}

/// <summary>The <c>sandbox.docker:</c> keys.</summary>
public sealed class RunDockerSection
{
    /// <summary>The engine's endpoint.</summary>
    public string? Endpoint { get; set; }
    /// <summary>The OCI runtime (runsc for gVisor).</summary>
    public string? Runtime { get; set; }
}
