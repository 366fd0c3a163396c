using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.Tests;

/// <summary>Runs an environment directly (no plugin loader) for verifier tests.</summary>
internal static class EnvTestKit
{
    private sealed class NoServices : IEnvironmentServices { public T? Get<T>() where T : class => null; }
    private sealed class NoLog : IEnvironmentLog { public void Write(string message) { } }

    public static async Task<T> Start<T>(Dictionary<string, string>? settings = null) where T : IEnvironment, new()
    {
        var env = new T();
        var s = env.Descriptor.Options.ToDictionary(o => o.Name, o => o.Default);
        foreach (var (k, v) in settings ?? []) s[k] = v;
        await env.InitializeAsync(new EnvironmentContext(s, Path.Combine(AppContext.BaseDirectory, "data"), new NoServices(), new NoLog()), default);
        return env;
    }

    public static async Task<Grade> Play(IEnvironment env, TaskRecord task, params AssistantTurn[] turns)
    {
        await using var ep = await env.OpenEpisodeAsync(task, new EpisodeContext(1, 0), default);
        foreach (var t in turns)
            if ((await ep.StepAsync(t, default)).Done) break;
        return await ep.GradeAsync(default);
    }
}
