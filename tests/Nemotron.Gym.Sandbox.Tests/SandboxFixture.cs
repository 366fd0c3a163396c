using System.Diagnostics;
using Docker.DotNet;
using Docker.DotNet.Models;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Sandbox;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Sandbox.Tests;

/// <summary>
/// Both backends, for real: builds the python image when it is missing (about 5 s), starts the private
/// dockerd when none answers, and plants what a sandbox must never reach: a secret file where a gym
/// store would be, a secret in this process's environment, and a canary process owned by the uid
/// containers run as. <see cref="AssertHostUntouched"/> checks all of it and that nothing leaked.
/// </summary>
public sealed class SandboxFixture : IAsyncLifetime
{
    public const string SiloName = "sandbox-tests";
    public const string SecretValue = "nemotron-gym-test-secret-3f9c1a";
    public const string SecretEnvironmentVariable = "NEMOTRON_GYM_TEST_SECRET";

    /// <summary>Short limits so hostile programs end quickly.</summary>
    public static SandboxLimits Limits { get; } = new(TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(2), 128L << 20, 32, 8L << 20, 64, 64L << 10);

    public SandboxSettings Settings { get; } = new()
    {
        SiloName = SiloName,
        Slots = 8,
        // Apart from the range a silo on this machine would claim by default.
        FirstUid = 63000,
        Limits = Limits,
        ImagesDirectory = "/var/lib/nemotron-gym/sandbox-images",
        ScratchDirectory = "/run/nemotron-gym-sandbox-tests",
        // The reaper runs when ReaperTests call it: a timed sweep between a test's making a leftover container and
        // its own sweep would take the container first (seen in a CI rehearsal).
        ReaperPeriod = Timeout.InfiniteTimeSpan,
    };

    /// <summary>The bwrap backend as hosts run it: one-shot runs through warm slots (cold when none is ready).</summary>
    public BwrapSandboxService Bwrap { get; private set; } = null!;

    /// <summary>The bwrap backend with warm slots off: every one-shot run cold, the path a run falls back to.</summary>
    public BwrapSandboxService BwrapCold { get; private set; } = null!;
    public DockerSandboxService Docker { get; private set; } = null!;
    public DockerClient DockerClient { get; private set; } = null!;
    public string SecretStorePath { get; } = "/var/lib/nemotron-gym-tests/store.db";
    public string SecretStoreFolder => Path.GetDirectoryName(SecretStorePath)!;
    private Process? canary;
    private DockerClientConfiguration? dockerConfiguration;

    public int CanaryPid => canary!.Id;

    public ISandboxService Backend(string name) => name switch
    {
        "bwrap" => Bwrap,
        "bwrap-cold" => BwrapCold,
        "docker" => Docker,
        _ => throw new ArgumentException($"no backend '{name}'"),
    };

    public async ValueTask InitializeAsync()
    {
        await SandboxImage.EnsureAsync(Path.Combine(RepoPaths.Root, "sandbox-images"), Settings.ImagesDirectory, "python", default);
        await PrivateDockerDaemon.EnsureRunningAsync(TimeSpan.FromSeconds(120), default);

        Environment.SetEnvironmentVariable(SecretEnvironmentVariable, SecretValue);
        Directory.CreateDirectory(SecretStoreFolder);
        // World-readable on purpose: only the sandbox's mounts may keep a program from it, not file modes.
        await File.WriteAllTextAsync(SecretStorePath, SecretValue);
        File.SetUnixFileMode(SecretStorePath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var start = new ProcessStartInfo("setpriv") { UseShellExecute = false };
        foreach (var a in new[] { "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "3600" }) start.ArgumentList.Add(a);
        canary = Process.Start(start)!;

        var (bwrap, bwrapError) = BwrapSandboxService.Create(Settings);
        Bwrap = bwrap ?? throw new InvalidOperationException(bwrapError);
        var (cold, coldError) = BwrapSandboxService.Create(Settings with { Slots = 4, WarmSlots = 0 });
        BwrapCold = cold ?? throw new InvalidOperationException(coldError);
        // The warm slots start in the background; the tests of the warm path want them up.
        for (var i = 0; i < 400 && Bwrap.WarmSlotsReady < Bwrap.WarmSlotTarget; i++) await Task.Delay(25);
        var (docker, dockerError) = await DockerSandboxService.CreateAsync(Settings, default);
        Docker = docker ?? throw new InvalidOperationException(dockerError);
        dockerConfiguration = new DockerClientConfiguration(new Uri(Settings.DockerEndpoint));
        DockerClient = dockerConfiguration.CreateClient();
    }

    /// <summary>Where a backend's scratch folders are (both bwrap services use the same folder).</summary>
    public string ScratchFolderOf(string backend) => Path.Combine(Settings.ScratchDirectory, backend == "bwrap-cold" ? "bwrap" : backend);

    /// <summary>
    /// The host after a run: the secret file as it was, the canary alive, no process of a sandbox uid
    /// (slot uids, 65534) but the canary and the idle keepers of warm slots, no container of this silo, no scratch folder but those of
    /// <paramref name="openScratchFolders"/> sessions still open.
    /// </summary>
    public async Task AssertHostUntouched(int openScratchFolders = 0)
    {
        Assert.Equal(SecretValue, await File.ReadAllTextAsync(SecretStorePath));
        Assert.False(canary!.HasExited, "the canary process (uid 65534 on the host) was killed");
        // A warm slot's keepers (bwrap and its agent) idle between runs; nothing else of a sandbox uid may be left.
        var keepers = Bwrap.WarmKeeperProcessIds.ToHashSet();
        var strays = SandboxProcesses().Where(p => p != canary.Id && !keepers.Contains(p)).ToList();
        Assert.True(strays.Count == 0, $"processes of sandbox uids left running: {string.Join(", ", strays.Select(Describe))}");
        var containers = await DockerClient.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [$"{DockerSandboxService.SiloLabel}={SiloName}"] = true } },
        });
        Assert.True(containers.Count == 0, $"containers left: {string.Join(", ", containers.Select(c => c.Names.FirstOrDefault()))}");
        var scratch = new[] { "bwrap", "docker" }.Select(b => Path.Combine(Settings.ScratchDirectory, b)).Where(Directory.Exists)
            .SelectMany(Directory.GetFileSystemEntries).ToList();
        Assert.True(scratch.Count == openScratchFolders, $"scratch entries left: {string.Join(", ", scratch)}");
    }

    /// <summary>
    /// Processes whose real uid is one a sandbox of these tests runs as: this fixture's slot uids, and uid 65534
    /// unless the process lies under the container shim of ANOTHER Docker engine. Other test assemblies run side by
    /// side with this one, and their containers (on engines of their own) run as 65534 too; they are not strays of
    /// ours. Anything else at 65534, also a process that left every tree, counts.
    /// </summary>
    /// <summary>
    /// The uids from <see cref="SandboxSettings.FirstUid"/> on that this fixture's services can claim (12 slots, taken
    /// from the bottom of the range). Other test projects start their own ranges higher (the plugin-worker tests at
    /// 63500), and their warm slots keep processes of those uids alive while these tests run.
    /// </summary>
    private const int OwnUidSpan = 100;

    public IEnumerable<int> SandboxProcesses()
    {
        // One pass over /proc for every process's parent and the candidates, then the candidates' ancestry.
        var parents = new Dictionary<int, int>();
        var ours = new List<int>();
        var nobody = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            string[] status;
            try { status = File.ReadAllLines(Path.Combine(dir, "status")); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            var parentLine = status.FirstOrDefault(l => l.StartsWith("PPid:", StringComparison.Ordinal));
            if (parentLine is not null && int.TryParse(parentLine[5..].Trim(), out var parent)) parents[pid] = parent;
            if (status.Any(l => l.StartsWith("State:\tZ", StringComparison.Ordinal))) continue;
            var uidLine = status.FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            if (uidLine is null) continue;
            var uid = int.Parse(uidLine.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
            if (uid >= Settings.FirstUid && uid < Settings.FirstUid + OwnUidSpan) ours.Add(pid);
            else if (uid == 65534) nobody.Add(pid);
        }
        return [.. ours, .. nobody.Where(pid => !UnderForeignEngine(pid, parents))];
    }

    /// <summary>Whether an ancestor of <paramref name="pid"/> is a containerd shim that is not our engine's.</summary>
    private static bool UnderForeignEngine(int pid, Dictionary<int, int> parents)
    {
        var ours = Path.Combine(PrivateDockerDaemon.RunDirectory, "exec") + "/";
        for (var (current, hops) = (pid, 0); current > 1 && hops < 64 && parents.TryGetValue(current, out var parent); hops++)
        {
            string command;
            try { command = File.ReadAllText($"/proc/{parent}/cmdline").Replace('\0', ' '); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
            if (command.Contains("containerd-shim", StringComparison.Ordinal)) return !command.Contains(ours, StringComparison.Ordinal);
            current = parent;
        }
        return false;
    }

    private static string Describe(int pid)
    {
        try { return $"{pid} ({File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim()})"; }
        catch (IOException) { return pid.ToString(); }
    }

    /// <summary>
    /// Clean-up only: every test that runs a sandbox checks the host itself, where a failure names that test. An
    /// assertion here would be charged to every test of the collection.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        Bwrap?.Dispose();
        BwrapCold?.Dispose();
        if (Docker is not null) await Docker.DisposeAsync();
        DockerClient?.Dispose();
        dockerConfiguration?.Dispose();
        if (canary is { HasExited: false }) canary.Kill();
        canary?.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class SandboxCollection : ICollectionFixture<SandboxFixture>
{
    public const string Name = "sandbox";
}
