using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;

namespace Nemotron.Gym.Plugins.Tests;

/// <summary>Environments that misbehave in the ways the host must survive.</summary>
public sealed class BadEnvironment : EnvironmentBase
{
    public override EnvironmentDescriptor Descriptor { get; } = new("bad", "1.0.0", "misbehaves on purpose",
        [new ConfigOption("mode", ConfigType.Choice, "hang", "how to fail", Choices: ["hang", "throw", "ignore_cancel"])], ["train"]);

    public override ValueTask<IReadOnlyList<TaskRecord>> LoadTasksAsync(TaskQuery query, CancellationToken cancellation) =>
        ValueTask.FromResult<IReadOnlyList<TaskRecord>>([new TaskRecord { Id = "t1", Input = [Message.User("hi")], Reference = [AssistantTurn.FromContent("x")] }]);

    public override IReadOnlyList<string> ValidateTask(TaskRecord task) => throw new InvalidOperationException("validator crashed");

    public override ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation) =>
        ValueTask.FromResult<IEpisode>(new Episode(Context.GetText("mode")));

    private sealed class Episode(string mode) : IEpisode
    {
        public IReadOnlyList<Message> Opening => [Message.User("hi")];
        public IReadOnlyList<ToolDefinition> Tools => [];
        public ValueTask<StepResult> StepAsync(AssistantTurn turn, CancellationToken cancellation) =>
            mode == "throw" ? throw new InvalidOperationException("step exploded") : ValueTask.FromResult(StepResult.End);
        public async ValueTask<Grade> GradeAsync(CancellationToken cancellation)
        {
            if (mode == "throw") throw new InvalidOperationException("grader exploded");
            if (mode == "hang") await Task.Delay(Timeout.Infinite, cancellation);
            Thread.Sleep(5_000); // ignores cancellation entirely
            return Grade.Of(1, "too late");
        }
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

public class HostedEnvironmentTests
{
    private static Task<HostedEnvironment> Start(string mode) =>
        HostedEnvironment.StartAsync(new PluginEnvironment(new BadEnvironment().Descriptor, AppContext.BaseDirectory, typeof(BadEnvironment).Assembly.Location, typeof(BadEnvironment)),
            new Dictionary<string, string> { ["mode"] = mode }, new HostLimits(TimeSpan.FromMilliseconds(300)));

    [Theory]
    [InlineData("hang", "did not finish within 0.3s")]
    [InlineData("ignore_cancel", "did not finish within 0.3s")]
    [InlineData("throw", "grader exploded")]
    public async Task AFailingOrHangingGraderGivesZeroWithTheReason(string mode, string reason)
    {
        var env = await Start(mode);
        var task = (await env.LoadTasksAsync(new TaskQuery("train", 1, 1)))[0];
        await using var ep = await env.OpenAsync(task, new EpisodeContext(1, 0));
        if (mode != "throw") await ep.StepAsync(AssistantTurn.FromContent("x"));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var g = await ep.GradeAsync();
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), "the host must not wait for a hung grader");
        Assert.Equal(0, g.Reward);
        Assert.Contains(reason, g.Reason);
        Assert.Contains("environment 'bad', task t1: grade", g.Reason);
    }

    [Fact]
    public async Task AStepFailureNamesTheEnvironmentCallAndTask()
    {
        var env = await Start("throw");
        var task = (await env.LoadTasksAsync(new TaskQuery("train", 1, 1)))[0];
        await using var ep = await env.OpenAsync(task, new EpisodeContext(1, 0));
        var e = await Assert.ThrowsAsync<EnvironmentCallException>(() => ep.StepAsync(AssistantTurn.FromContent("x")));
        Assert.Equal("environment 'bad', task t1: step failed: InvalidOperationException: step exploded", e.Message);
        Assert.Equal(["validate threw InvalidOperationException: validator crashed"], env.ValidateTask(task));
    }

    [Fact]
    public void ModelTextIsParsedIntoTurnsWithoutThrowing()
    {
        var t = AssistantTurn.Parse("<think>hmm</think>ok<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"2+2\"}}</tool_call><tool_call>{nope}</tool_call><|end|>");
        Assert.Equal("ok", t.Content);
        Assert.Equal("hmm", t.Reasoning);
        var call = Assert.Single(t.ToolCalls);
        Assert.Equal("2+2", call.Arguments["expression"]!.GetValue<string>());
        Assert.Single(t.FormatErrors);
    }
}
