namespace Nemotron.Gym.Cli.Tests;

public sealed class RolloutCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-rollouts-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void ANemoGymFileImportsAsARunThatListsAndExportsWithoutNamingIt()
    {
        // Two rollouts as NeMo-Gym's collection writes them: no run id, no step, nothing of ours.
        string input = Path.Combine(_dir, "nemo_rollouts.jsonl");
        File.WriteAllLines(input,
        [
            """{"responses_create_params": {"input": "2+2?"}, "response": {"output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "\\boxed{4}"}]}]}, "reward": 1.0, "_ng_task_index": 3, "_ng_rollout_index": 0}""",
            """{"responses_create_params": {"input": "2+2?"}, "response": {"output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "5"}]}]}, "reward": 0.0, "_ng_task_index": 3, "_ng_rollout_index": 1}""",
        ]);
        string store = Path.Combine(_dir, "rollouts.db");

        var (code, output) = GymProcess.Run(_dir, "rollouts", "import", "--store", "sqlite:" + store, "-i", input);
        Assert.True(code == 0, output);
        Assert.Contains("2 new", output);

        (code, output) = GymProcess.Run(_dir, "runs", "list", "--store", store);
        Assert.True(code == 0, output);
        Assert.Contains("nemo_rollouts", output);
        Assert.Contains("imported", output);

        string exported = Path.Combine(_dir, "out.jsonl");
        (code, output) = GymProcess.Run(_dir, "rollouts", "export", "--store", store, "-o", exported);
        Assert.True(code == 0, output);
        Assert.Contains("wrote 2 rollouts of run nemo_rollouts", output);
        Assert.Equal(2, File.ReadAllLines(exported).Length);

        // Importing again adds nothing and leaves the run record as it was.
        (code, output) = GymProcess.Run(_dir, "rollouts", "import", "--store", "sqlite:" + store, "-i", input);
        Assert.True(code == 0, output);
        Assert.Contains("0 new, 2 already stored", output);
    }

    [Fact]
    public async Task AnImportThatFailsHalfwayLeavesTheStoreAsItWas()
    {
        string line(int i, string reward) =>
            $$"""{"responses_create_params": {"input": "q{{i}}"}, "response": {"output": []}, "reward": {{reward}}, "_ng_task_index": {{i}}, "_ng_rollout_index": 0}""";
        string input = Path.Combine(_dir, "broken.jsonl");
        // 600 good lines (more than one old batch of 500), then a line that is not JSON.
        File.WriteAllLines(input, [.. Enumerable.Range(0, 600).Select(i => line(i, "1.0")), "{oops"]);
        string store = Path.Combine(_dir, "rollouts.db");
        var (code, output) = GymProcess.Run(_dir, "rollouts", "import", "--store", "sqlite:" + store, "-i", input);
        Assert.True(code == 2, output);
        Assert.Contains("broken.jsonl:601", output);
        // Nothing of the file went in (the first 500 lines used to be committed, with no run record to find them by).
        await using var s = await Nemotron.Gym.Store.RolloutStores.OpenAsync("sqlite:" + store);
        Assert.Equal(0, await s.CountRolloutsAsync("broken"));
        Assert.Empty(await s.ListRunsAsync());
    }
}
