using System.Collections.Concurrent;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.PluginWorker;
using Nemotron.Gym.Plugins;

namespace Nemotron.Gym.Grains;

/// <summary>Where a silo finds environment plugins, and the limits it runs them under.</summary>
public sealed class EnvironmentPoolOptions
{
    /// <summary>Plugin folders (each a plugin, or a folder of plugin folders).</summary>
    public List<string> PluginFolders { get; set; } = [.. PluginLoader.DefaultSearchPaths()];
    /// <summary>Per-call timeout for environment code.</summary>
    public TimeSpan CallTimeout { get; set; } = HostLimits.Default.CallTimeout;
    /// <summary>The limit for grading a whole group (a judge compares many pairs); null: 10 × <see cref="CallTimeout"/>.</summary>
    public TimeSpan? GroupCallTimeout { get; set; }
}

/// <summary>
/// The environments of one silo: plugins are loaded once, each (environment, settings) is initialized once, and
/// each task set is built once, then shared by every episode grain on the silo.
/// Environments get the silo's sandbox pool and judge pool (when it has them) through <see cref="IEnvironmentServices"/>.
/// </summary>
/// <remarks>Plugins run where <paramref name="workers"/> hosts them: in worker processes by default, in this process with --in-process.</remarks>
public sealed class EnvironmentPool(EnvironmentPoolOptions options, PluginWorkers workers, SiloSandbox? sandbox = null, Judges.JudgePool? judge = null)
{
    private readonly Lazy<(List<PluginEnvironment> Environments, List<PluginError> Errors)> _plugins = new(() => workers.LoadAll(options.PluginFolders));
    private readonly ConcurrentDictionary<string, Lazy<Task<HostedEnvironment>>> _environments = new();
    private readonly ConcurrentDictionary<string, Lazy<Task<Dictionary<string, TaskRecord>>>> _taskSets = new();

    /// <summary>The plugins found, and those that failed to load.</summary>
    public (IReadOnlyList<PluginEnvironment> Environments, IReadOnlyList<PluginError> Errors) Plugins => _plugins.Value;

    /// <summary>The initialized environment for a name and settings.</summary>
    public Task<HostedEnvironment> GetAsync(string name, IReadOnlyDictionary<string, string> settings)
    {
        string key = name + "|" + TaskSetSpec.SettingsKey(settings);
        var lazy = _environments.GetOrAdd(key, _ => new Lazy<Task<HostedEnvironment>>(() => StartAsync(name, settings)));
        return Retry(lazy, () => _environments.TryRemove(key, out _));
    }

    private async Task<HostedEnvironment> StartAsync(string name, IReadOnlyDictionary<string, string> settings)
    {
        var (envs, errors) = _plugins.Value;
        var plugin = envs.FirstOrDefault(e => e.Descriptor.Name == name);
        if (plugin == null)
        {
            var hint = errors.Count > 0 ? $"; plugins that failed to load: {string.Join("; ", errors.Select(e => $"{e.Source}: {e.Error}"))}" : "";
            throw new InvalidOperationException($"no environment named '{name}' in {string.Join(", ", options.PluginFolders)} (found: {string.Join(", ", envs.Select(e => e.Descriptor.Name))}){hint}");
        }
        return await HostedEnvironment.StartAsync(plugin, settings, new HostLimits(options.CallTimeout, options.GroupCallTimeout), services: await ServicesAsync());
    }

    /// <summary>What environments on this silo may ask for: the sandbox pool, once it has started, and the judge pool (when the silo has them).</summary>
    private async Task<IEnvironmentServices> ServicesAsync()
    {
        var offered = new Dictionary<Type, object>();
        if (sandbox is not null && await sandbox.Ready is { } pool) offered[typeof(ISandboxService)] = pool;
        if (judge is not null) offered[typeof(IJudgeService)] = judge;
        return new HostServices(offered);
    }

    /// <summary>The tasks of a task set, by id.</summary>
    public Task<Dictionary<string, TaskRecord>> GetTasksAsync(TaskSetSpec set)
    {
        var lazy = _taskSets.GetOrAdd(set.CacheKey, _ => new Lazy<Task<Dictionary<string, TaskRecord>>>(async () =>
        {
            var env = await GetAsync(set.Environment, set.Settings);
            var tasks = await env.LoadTasksAsync(new TaskQuery(set.Split, set.Count, set.Seed));
            var byId = new Dictionary<string, TaskRecord>();
            foreach (var t in tasks)
                if (!byId.TryAdd(t.Id, t)) throw new InvalidOperationException($"environment '{set.Environment}', split {set.Split}: task id '{t.Id}' appears twice");
            return byId;
        }));
        return Retry(lazy, () => _taskSets.TryRemove(set.CacheKey, out _));
    }

    /// <summary>One task of a task set.</summary>
    public async Task<TaskRecord> GetTaskAsync(TaskSetSpec set, string taskId) =>
        (await GetTasksAsync(set)).TryGetValue(taskId, out var t) ? t
            : throw new InvalidOperationException($"environment '{set.Environment}', split {set.Split}: no task '{taskId}'");

    // A failed start is not cached: the next caller tries again (the plugin may have been fixed, or it was a timeout).
    private static async Task<T> Retry<T>(Lazy<Task<T>> lazy, Action forget)
    {
        try { return await lazy.Value; }
        catch { forget(); throw; }
    }
}
