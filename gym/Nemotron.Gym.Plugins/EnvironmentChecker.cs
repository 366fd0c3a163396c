using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Plugins;

/// <summary>One problem found by <see cref="EnvironmentChecker"/>.</summary>
/// <param name="TaskId">The task (empty for environment-wide problems).</param>
/// <param name="Problem">What is wrong.</param>
public sealed record CheckProblem(string TaskId, string Problem);

/// <summary>What `gym env check` found.</summary>
public sealed record CheckReport(string Environment, int TasksChecked, int WrongAnswersTried, IReadOnlyList<CheckProblem> Problems)
{
    /// <summary>No problems.</summary>
    public bool Passed => Problems.Count == 0;
}

/// <summary>
/// The verifier self-test: loads every split, validates every task record (ids unique, a reference
/// present, the environment's own checks), replays each reference and expects full reward (1), then
/// tries wrong answers (empty, a refusal, another task's reference) and expects each to grade lower.
/// </summary>
public static class EnvironmentChecker
{
    /// <summary>Checks an environment; <paramref name="tasksPerSplit"/> bounds procedural splits.</summary>
    public static async Task<CheckReport> CheckAsync(HostedEnvironment env, int tasksPerSplit = 50, int seed = 1, CancellationToken cancellation = default)
    {
        var problems = new List<CheckProblem>();
        int checkedTasks = 0, wrongTried = 0;
        foreach (var split in env.Descriptor.Splits)
        {
            IReadOnlyList<TaskRecord> tasks;
            try { tasks = await env.LoadTasksAsync(new TaskQuery(split, tasksPerSplit, seed), cancellation); }
            catch (Exception e) when (e is EnvironmentCallException or TaskFormatException or FileNotFoundException)
            {
                problems.Add(new CheckProblem("", $"split '{split}': {e.Message}"));
                continue;
            }
            if (tasks.Count == 0) problems.Add(new CheckProblem("", $"split '{split}' has no tasks"));
            var again = await env.LoadTasksAsync(new TaskQuery(split, tasksPerSplit, seed), cancellation);
            if (!again.Select(t => t.ToJsonLine()).SequenceEqual(tasks.Select(t => t.ToJsonLine())))
                problems.Add(new CheckProblem("", $"split '{split}': loading twice with the same seed gave different tasks"));
            foreach (var dup in tasks.GroupBy(t => t.Id).Where(g => g.Count() > 1))
                problems.Add(new CheckProblem(dup.Key, $"split '{split}': id used by {dup.Count()} tasks"));
            for (int i = 0; i < tasks.Count; i++)
            {
                var task = tasks[i];
                checkedTasks++;
                foreach (var p in env.ValidateTask(task)) problems.Add(new CheckProblem(task.Id, p));
                if (task.Reference.Count == 0)
                {
                    problems.Add(new CheckProblem(task.Id, "no reference answer"));
                    continue;
                }
                var (refGrade, refProblem, _) = await ReplayAsync(env, task, task.Reference, seed, cancellation);
                if (refProblem != null) { problems.Add(new CheckProblem(task.Id, $"reference: {refProblem}")); continue; }
                if (refGrade!.Reward < 1 - 1e-9)
                {
                    problems.Add(new CheckProblem(task.Id, $"the reference answer grades {refGrade.Reward:0.###}, not full reward: {refGrade.Reason}"));
                    continue;
                }
                foreach (var wrong in WrongAnswers(task, tasks, i))
                {
                    wrongTried++;
                    var (g, p, _) = await ReplayAsync(env, task, wrong.Turns, seed, cancellation);
                    if (p != null) problems.Add(new CheckProblem(task.Id, $"wrong answer ({wrong.Label}): {p}"));
                    else if (g!.Reward >= refGrade.Reward)
                        problems.Add(new CheckProblem(task.Id, $"a wrong answer ({wrong.Label}) grades {g.Reward:0.###}, as high as the reference: {g.Reason}"));
                }
            }
        }
        return new CheckReport(env.Name, checkedTasks, wrongTried, problems);
    }

    private static IEnumerable<(string Label, IReadOnlyList<AssistantTurn> Turns)> WrongAnswers(TaskRecord task, IReadOnlyList<TaskRecord> all, int index)
    {
        yield return ("empty", [AssistantTurn.FromContent("")]);
        yield return ("refusal", [AssistantTurn.FromContent("I don't know.")]);
        string final = task.Reference[^1].Content.Trim();
        for (int k = 1; k < all.Count; k++)
        {
            var other = all[(index + k) % all.Count];
            if (other.Reference.Count > 0 && other.Reference[^1].Content.Trim() != final)
            {
                yield return ($"the reference of task {other.Id}", other.Reference);
                yield break;
            }
        }
    }

    /// <summary>A replay's outcome: the grade, or why there is none, and the conversation as played.</summary>
    /// <param name="Grade">The grade (null when <paramref name="Problem"/> says why there is none).</param>
    /// <param name="Problem">The episode failed or ended before the last turn.</param>
    /// <param name="Played">The opening, each turn, and the environment's replies between turns (none after the last).</param>
    public sealed record Replay(Grade? Grade, string? Problem, ChatTranscript Played);

    /// <summary>Plays the given assistant turns through a fresh episode and grades it.</summary>
    public static async Task<Replay> ReplayAsync(HostedEnvironment env, TaskRecord task, IReadOnlyList<AssistantTurn> turns, int seed, CancellationToken cancellation,
        int sampleIndex = 0)
    {
        var messages = new List<Message>();
        IReadOnlyList<ToolDefinition>? tools = null;
        try
        {
            await using var episode = await env.OpenAsync(task, new EpisodeContext(seed, sampleIndex), cancellation);
            messages.AddRange(episode.Opening);
            tools = episode.Tools.Count > 0 ? episode.Tools : null;
            for (int t = 0; t < turns.Count; t++)
            {
                messages.Add(turns[t].ToMessage());
                var step = await episode.StepAsync(turns[t], cancellation);
                bool last = t == turns.Count - 1;
                if (step.Done && !last) return new(null, $"the episode ended after turn {t + 1} of {turns.Count}", new ChatTranscript(messages, tools));
                if (!last) messages.AddRange(step.Reply);
            }
            return new(await episode.GradeAsync(cancellation), null, new ChatTranscript(messages, tools));
        }
        catch (EnvironmentCallException e) { return new(null, e.Message, new ChatTranscript(messages, tools)); }
    }
}
