namespace Nemotron.Gym.Cli.Tests;

public sealed class EnvCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-env-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void ListShowsTheFourBuiltInEnvironments()
    {
        var (code, output) = GymProcess.Run(_dir, "env", "list");
        Assert.True(code == 0, output);
        foreach (var name in new[] { "math", "reasoning", "instruction_following", "tool_use" })
            Assert.Contains(name, output);
    }

    [Fact]
    public void GradePrintsTheRewardAndItsReason()
    {
        var (code, output) = GymProcess.Run(_dir, "env", "grade", "math", "--task", "math-train-00000", "--response", "I think it is 12345.");
        Assert.True(code == 0, output);
        Assert.Contains("reward", output);
        Assert.Contains("extracted_answer: 12345", output);
        Assert.Contains("reward: 0", output);
    }

    [Fact]
    public void AnUnknownEnvironmentIsNamedWithTheKnownOnes()
    {
        var (code, output) = GymProcess.Run(_dir, "env", "grade", "nope", "--task", "x", "--response", "y");
        Assert.Equal(2, code);
        Assert.Contains("no environment named 'nope'", output);
        Assert.Contains("math", output);
    }

    [Fact]
    public void TheScaffoldBuildsOutsideTheSolutionPassesCheckAndGrades()
    {
        var (code, output) = GymProcess.Run(_dir, "env", "new", "Demo", "--out", _dir);
        Assert.True(code == 0, output);
        string project = Path.Combine(_dir, "Demo");

        (code, output) = GymProcess.Run(_dir, "env", "check", project);
        Assert.True(code == 0, output);
        Assert.Contains("passed", output);

        (code, output) = GymProcess.Run(_dir, "env", "grade", project, "--task", "demo-1", "--response", "apple");
        Assert.True(code == 0, output);
        Assert.Contains("1", output);
        Assert.Contains("answered 'apple'", output);

        (code, output) = GymProcess.Run(_dir, "env", "grade", project, "--task", "demo-1", "--response", "pear");
        Assert.True(code == 0, output);
        Assert.Contains("expected 'apple', got 'pear'", output);
    }
}
