using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Plugins;

/// <summary>
/// Supervised chat conversations made from an environment's tasks: the opening, then each reference assistant turn
/// with the environment's real replies between them (the episode is stepped, so tool results are what the
/// environment returns). A policy fine-tuned on them learns the environment's formats before RL starts; only
/// references the environment grades at full reward are kept, so a broken reference never becomes training data.
/// </summary>
public static class ReferenceConversations
{
    /// <summary>What was made: the conversations, and how many tasks were left out and why.</summary>
    public sealed record Result(List<ChatTranscript> Conversations, int WithoutReference, int NotFullReward, int Failed);

    /// <summary>Builds one conversation per task of <paramref name="query"/> that has a fully rewarded reference.</summary>
    public static async Task<Result> BuildAsync(HostedEnvironment env, TaskQuery query, CancellationToken cancellation = default) =>
        await BuildAsync(env, await env.LoadTasksAsync(query, cancellation), query.Seed, cancellation);

    /// <summary>Builds one conversation per task of <paramref name="tasks"/> that has a fully rewarded reference.</summary>
    public static async Task<Result> BuildAsync(HostedEnvironment env, IReadOnlyList<TaskRecord> tasks, int seed, CancellationToken cancellation = default)
    {
        var conversations = new List<ChatTranscript>();
        int withoutReference = 0, notFull = 0, failed = 0;
        for (int i = 0; i < tasks.Count; i++)
        {
            var task = tasks[i];
            if (task.Reference.Count == 0) { withoutReference++; continue; }
            var replay = await EnvironmentChecker.ReplayAsync(env, task, task.Reference, seed, cancellation, sampleIndex: i);
            if (replay.Problem != null) failed++;
            else if (replay.Grade!.Reward < 1) notFull++;
            else conversations.Add(replay.Played);
        }
        return new Result(conversations, withoutReference, notFull, failed);
    }
}
