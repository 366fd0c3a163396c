using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.Swe.Tests;

/// <summary>The agent's episode: the tools, a scripted agent that solves a task, the step limit, masking.</summary>
[Collection("swe")]
public sealed class EpisodeTests(SweHost host)
{
    internal static AssistantTurn Call(string tool, JsonObject? args = null) => new("", "", null, [new ToolCall("call_" + tool, tool, args ?? [])], []);
    internal static AssistantTurn Bash(string command) => Call("bash", new JsonObject { ["command"] = command });

    internal static async Task<string> Reply(IEpisode episode, AssistantTurn turn)
    {
        var step = await episode.StepAsync(turn, default);
        Assert.False(step.Done, "the episode ended early");
        return string.Join("\n", step.Reply.Select(m => m.Content));
    }

    private SweTask Task0 => host.Tasks[0];

    [Fact]
    public async Task A_scripted_agent_that_views_edits_and_submits_resolves_the_task()
    {
        var record = host.Env.ToTaskRecord(Task0);
        Assert.Contains(record.Reference, t => t.ToolCalls.Any(c => c.Name == "str_replace"));
        await using var episode = await host.Env.OpenEpisodeAsync(record, new EpisodeContext(1, 0), default);
        Assert.Equal(["bash", "view", "str_replace", "create", "submit"], episode.Tools.Select(t => t.Name));
        Assert.Contains(Task0.ProblemStatement.Trim()[..40], episode.Opening[^1].Content);
        foreach (var turn in record.Reference)
            if ((await episode.StepAsync(turn, default)).Done) break;
        var grade = await episode.GradeAsync(default);
        Assert.Equal(1, grade.Reward);
        Assert.Equal("submit", grade.Evidence["ended_by"]);
        Assert.Equal(1, grade.Components["patch_similarity"]);
    }

    [Fact]
    public async Task The_repository_has_no_tests_no_history_and_the_starting_tree()
    {
        await using var episode = await host.Env.OpenEpisodeAsync(host.Env.ToTaskRecord(Task0), new EpisodeContext(1, 0), default);
        var listing = await Reply(episode, Bash("pwd; ls -a; ls -a ..; ls -R ."));
        Assert.Contains("/work/repo", listing);
        Assert.DoesNotContain("tests", listing);
        Assert.DoesNotContain(".git", listing);
        var file = Task0.GoldPatch.Split('\n')[0].Split(" b/")[1];
        var view = await Reply(episode, Call("view", new JsonObject { ["path"] = file, ["start_line"] = 2, ["end_line"] = 3 }));
        var lines = host.Env.Repositories.Starting(Task0)[file].Split('\n');
        Assert.Equal($"     2\t{lines[1]}\n     3\t{lines[2]}\n", view);
        // The agent's tree is the starting tree exactly: its diff is empty.
        var grade = await episode.GradeAsync(default);
        Assert.Equal("", grade.Evidence["patch"]);
        Assert.Equal(0, grade.Reward);
        Assert.False(grade.Masked);
    }

    [Fact]
    public async Task Str_replace_needs_exactly_one_match_and_says_how_many_it_found()
    {
        await using var episode = await host.Env.OpenEpisodeAsync(host.Env.ToTaskRecord(Task0), new EpisodeContext(1, 0), default);
        await Reply(episode, Call("create", new JsonObject { ["path"] = "notes/x.py", ["file_text"] = "a = 1\na = 1\nb = 2\n" }));
        var twice = await Reply(episode, Call("str_replace", new JsonObject { ["path"] = "notes/x.py", ["old_str"] = "a = 1", ["new_str"] = "a = 3" }));
        Assert.Contains("occurs 2 times", twice);
        var none = await Reply(episode, Call("str_replace", new JsonObject { ["path"] = "notes/x.py", ["old_str"] = "c = 1", ["new_str"] = "" }));
        Assert.Contains("not found", none);
        var once = await Reply(episode, Call("str_replace", new JsonObject { ["path"] = "notes/x.py", ["old_str"] = "b = 2", ["new_str"] = "b = 5" }));
        Assert.Contains("Edited notes/x.py", once);
        Assert.StartsWith("a = 1\na = 1\nb = 5\n", await Reply(episode, Bash("cat notes/x.py")));
        var missing = await Reply(episode, Call("str_replace", new JsonObject { ["path"] = "nope.py", ["old_str"] = "x" }));
        Assert.Contains("new_str", missing);
        var grade = await episode.GradeAsync(default);
        // The new file is part of the agent's patch.
        Assert.Contains("+++ b/notes/x.py", grade.Evidence["patch"]);
    }

    [Fact]
    public async Task A_turn_without_a_tool_call_is_answered_and_the_step_limit_ends_the_episode()
    {
        var env = await host.StartAsync(host, new() { ["max_steps"] = "3" });
        await using var episode = await env.OpenEpisodeAsync(env.ToTaskRecord(Task0), new EpisodeContext(1, 0), default);
        var nudge = await episode.StepAsync(AssistantTurn.FromContent("I think the bug is in the parser."), default);
        Assert.Equal(Role.User, Assert.Single(nudge.Reply).Role);
        Assert.Contains("No tool was called", nudge.Reply[0].Content);
        Assert.Contains("no tool 'grep'", await Reply(episode, Call("grep", new JsonObject { ["pattern"] = "x" })));
        Assert.True((await episode.StepAsync(Bash("true"), default)).Done);
        var grade = await episode.GradeAsync(default);
        Assert.Equal("step_limit", grade.Evidence["ended_by"]);
        Assert.False(grade.Masked);
    }

    [Fact]
    public async Task A_command_past_its_timeout_is_killed_and_the_agent_told()
    {
        var env = await host.StartAsync(host, new() { ["command_timeout_s"] = "1" });
        await using var episode = await env.OpenEpisodeAsync(env.ToTaskRecord(Task0), new EpisodeContext(1, 0), default);
        var reply = await Reply(episode, Bash("echo start; sleep 30"));
        Assert.Contains("start", reply);
        Assert.Contains("ran past 1 s", reply);
        Assert.Contains("[exit code 0]", await Reply(episode, Bash("echo still here")));
    }

    [Fact]
    public async Task Long_output_keeps_its_head_and_tail()
    {
        await using var episode = await host.Env.OpenEpisodeAsync(host.Env.ToTaskRecord(Task0), new EpisodeContext(1, 0), default);
        var reply = await Reply(episode, Bash("python3 -c \"print('FIRST'); [print('x' * 70) for _ in range(2000)]; print('LAST')\""));
        Assert.True(reply.Length <= 6000);
        Assert.StartsWith("FIRST", reply);
        Assert.Contains("characters omitted", reply);
        Assert.Contains("LAST", reply);
    }

    [Fact]
    public async Task Without_a_sandbox_or_past_the_wall_clock_the_rollout_is_masked_never_a_zero()
    {
        var env = await host.StartAsync(new NoServices());
        await using (var episode = await env.OpenEpisodeAsync(env.ToTaskRecord(Task0), new EpisodeContext(1, 0), default))
        {
            await episode.StepAsync(Call("submit"), default);
            var grade = await episode.GradeAsync(default);
            Assert.True(grade.Masked);
            Assert.Contains("no sandbox", grade.Reason);
        }
        var slow = await host.StartAsync(host, new() { ["episode_timeout_s"] = "1" });
        await using (var episode = await slow.OpenEpisodeAsync(slow.ToTaskRecord(Task0), new EpisodeContext(1, 0), default))
        {
            await Reply(episode, Bash("sleep 1.5"));
            Assert.True((await episode.StepAsync(Bash("true"), default)).Done);
            var grade = await episode.GradeAsync(default);
            Assert.True(grade.Masked);
            Assert.Equal("wall_clock", grade.Evidence["ended_by"]);
        }
    }

    [Fact]
    public async Task A_test_run_that_times_out_masks_the_rollout()
    {
        // A patch that makes importing the package loop forever: the hidden test run can only time out.
        var start = host.Env.Repositories.Starting(Task0);
        var init = start.Keys.First(k => k.EndsWith("__init__.py", StringComparison.Ordinal));
        var lineCount = start[init].Split('\n').Length - 1;
        var patch = Task0.GoldPatch + $"diff --git a/{init} b/{init}\n--- a/{init}\n+++ b/{init}\n@@ -{lineCount},0 +{lineCount + 1},1 @@\n+while True: pass\n";
        var grade = await host.Env.Grader.GradeAsync(Task0, patch, SweGradingSettings.Default with { TestTimeout = TimeSpan.FromSeconds(2) }, default);
        Assert.True(grade.Masked, grade.Reason);
        Assert.Contains("timed out", grade.Reason);
    }

    [Fact]
    public async Task Fraction_and_similarity_modes()
    {
        var task = host.Tasks.First(t => t.FailToPass.Count >= 2);
        var fraction = await host.Env.Grader.GradeAsync(task, "", SweGradingSettings.Default with { Mode = SweRewardMode.Fraction }, default);
        Assert.Equal(0, fraction.Reward);
        var gold = await host.Env.Grader.GradeAsync(task, task.GoldPatch, SweGradingSettings.Default with { Mode = SweRewardMode.Fraction }, default);
        Assert.Equal(1, gold.Reward);
        var similar = await host.Env.Grader.GradeAsync(task, task.BugPatch, SweGradingSettings.Default with { Mode = SweRewardMode.PatchSimilarity }, default);
        Assert.True(similar.Reward < 1);
        Assert.False(similar.Evidence.ContainsKey("test_run"));
    }

    private sealed class NoServices : IEnvironmentServices { public T? Get<T>() where T : class => null; }
}
