using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Sandbox;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Environments.Swe.Tests;

/// <summary>The test classes that share one <see cref="SweHost"/> (one sandbox service over one set of uids), run one after another.</summary>
[CollectionDefinition("swe")]
public sealed class SweCollection : ICollectionFixture<SweHost>;

/// <summary>
/// The bwrap sandbox as a host offers it (the python image is built when missing), and the swe environment started
/// over it with the plugin's own data folder.
/// </summary>
public sealed class SweHost : IAsyncLifetime, IEnvironmentServices, IEnvironmentLog
{
    /// <summary>Uids and a scratch folder of its own, so no other test project's sandboxes (nor another host's) meet these.</summary>
    public SandboxSettings Settings { get; init; } = new() { SiloName = "swe-tests", FirstUid = 64600, Slots = 8, ScratchDirectory = "/run/nemotron-gym-sandbox-swe-tests" };
    public BwrapSandboxService Sandbox { get; private set; } = null!;
    public SweEnvironment Env { get; private set; } = null!;
    public IReadOnlyList<SweTask> Tasks { get; private set; } = [];
    public List<string> Log { get; } = [];

    public static string DataDirectory => Path.Combine(AppContext.BaseDirectory, "data");

    public async ValueTask InitializeAsync()
    {
        await SandboxImage.EnsureAsync(Path.Combine(RepoPaths.Root, "sandbox-images"), Settings.ImagesDirectory, "python", default);
        var (sandbox, error) = BwrapSandboxService.Create(Settings);
        Sandbox = sandbox ?? throw new InvalidOperationException(error);
        Env = await StartAsync(this);
        Tasks = await Env.ReadTasksAsync(default);
    }

    /// <summary>The environment with its defaults plus <paramref name="settings"/>, over <paramref name="services"/>.</summary>
    public async Task<SweEnvironment> StartAsync(IEnvironmentServices services, Dictionary<string, string>? settings = null)
    {
        var env = new SweEnvironment();
        var values = env.Descriptor.Options.ToDictionary(o => o.Name, o => o.Default);
        foreach (var (k, v) in settings ?? []) values[k] = v;
        await env.InitializeAsync(new EnvironmentContext(values, DataDirectory, services, this), default);
        return env;
    }

    public T? Get<T>() where T : class => typeof(T) == typeof(ISandboxService) ? (T)(object)Sandbox : null;

    public void Write(string message) { lock (Log) Log.Add(message); }

    public ValueTask DisposeAsync()
    {
        Sandbox?.Dispose();
        return ValueTask.CompletedTask;
    }
}
