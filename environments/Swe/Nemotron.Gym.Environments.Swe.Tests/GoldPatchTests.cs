using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.Swe.Tests;

/// <summary>
/// Execution grading over the committed task set: the gold patch resolves each task, the empty patch resolves none.
/// Both run over every task (200 gradings each take about a minute on two cores; see the README for the figure).
/// </summary>
[Collection("swe")]
public sealed class GoldPatchTests(SweHost host)
{
    private async Task<List<(SweTask Task, Grade Grade)>> GradeAll(Func<SweTask, string> patch, int parallel = 4)
    {
        var results = new (SweTask, Grade)[host.Tasks.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, host.Tasks.Count), new ParallelOptions { MaxDegreeOfParallelism = parallel }, async (i, ct) =>
        {
            var task = host.Tasks[i];
            results[i] = (task, await host.Env.Grader.GradeAsync(task, patch(task), SweGradingSettings.Default, ct));
        });
        return [.. results];
    }

    [Fact]
    public async Task Every_gold_patch_resolves_its_task()
    {
        Assert.True(host.Tasks.Count >= 150, $"only {host.Tasks.Count} tasks");
        var graded = await GradeAll(t => t.GoldPatch);
        var failures = graded.Where(g => g.Grade.Reward != 1).Select(g => $"{g.Task.InstanceId}: {g.Grade.Reason}").ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        foreach (var (task, grade) in graded)
        {
            Assert.False(grade.Masked);
            Assert.Equal(1, grade.Components["patch_similarity"]);
            // Every listed test's outcome is in the evidence.
            var f2p = System.Text.Json.Nodes.JsonNode.Parse(grade.Evidence["FAIL_TO_PASS"])!.AsObject();
            Assert.Equal(task.FailToPass.Order(), f2p.Select(p => p.Key).Order());
            Assert.All(f2p, p => Assert.Equal("passed", p.Value!.GetValue<string>()));
        }
    }

    [Fact]
    public async Task The_empty_patch_resolves_no_task()
    {
        var graded = await GradeAll(_ => "");
        var resolved = graded.Where(g => g.Grade.Reward != 0 || g.Grade.Masked).Select(g => $"{g.Task.InstanceId}: {g.Grade.Reason}").ToList();
        Assert.True(resolved.Count == 0, string.Join("\n", resolved));
        foreach (var (task, grade) in graded)
        {
            // The bug's tests fail and the others pass, as the task record says.
            var f2p = System.Text.Json.Nodes.JsonNode.Parse(grade.Evidence["FAIL_TO_PASS"])!.AsObject();
            Assert.All(f2p, p => Assert.NotEqual("passed", p.Value!.GetValue<string>()));
            Assert.Equal(1, grade.Components["pass_to_pass"]);
            Assert.Equal(0, grade.Components["patch_similarity"]);
        }
    }
}
