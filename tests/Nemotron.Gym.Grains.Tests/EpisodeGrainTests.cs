using Nemotron.Gym.Conversation;
using Nemotron.Gym.Grains;

namespace Nemotron.Gym.Grains.Tests;

public sealed class EpisodeGrainTests(ClusterFixture fixture) : IClassFixture<ClusterFixture>
{
    private static readonly TaskSetSpec Math = new("math", new Dictionary<string, string> { ["difficulty"] = "1" }, "train", 20, 3);
    private IGrainFactory Grains => fixture.Cluster.GrainFactory;

    private async Task<string> FirstTask(TaskSetSpec set) => (await Grains.GetGrain<IEnvironmentGrain>(set.Environment).ListTasks(set))[0];

    [Fact]
    public async Task AnEpisodeGoesFromOpenToDoneAndGradesTheReferenceAsFullReward()
    {
        string id = await FirstTask(Math);
        var g = Grains.GetGrain<IEpisodeGrain>($"t1/{Guid.NewGuid()}");
        Assert.Equal(EpisodeState.Created, await g.GetState());
        var opening = await g.Open(new EpisodeSpec(Math, id, 0, 1));
        Assert.Contains(opening.Messages, m => m.Role == Role.User && m.Content.Length > 0);
        Assert.Equal(EpisodeState.AwaitingModel, await g.GetState());

        // The task's reference answer, written as the model would: content then end of turn.
        var reply = await g.Step(AssistantTurn.Parse(await ReferenceText(id), false), final: false);
        Assert.True(reply.Done);
        Assert.Equal(EpisodeState.AwaitingGrade, await g.GetState());
        var grade = await g.Grade(truncated: false);
        Assert.Equal(1.0, grade.Grade.Reward);
        Assert.NotEmpty(grade.Grade.Reason);
        // A graded episode deactivates (its memory goes); the key is never used again, and a late call finds a
        // fresh grain that refuses it, which is how the trainer notices a lost episode.
        var e = await Assert.ThrowsAnyAsync<Exception>(() => g.Grade(false));
        Assert.Matches("cannot Grade while (Done|Created)", e.Message);
    }

    [Fact]
    public async Task AnEpisodeCutOffBeforeTheModelsTurnIsGradedAsItStands()
    {
        // The collector grades an episode whose context is already full (a prompt longer than the model's context)
        // without a step; only a truncated grade may skip it.
        string id = await FirstTask(Math);
        var g = Grains.GetGrain<IEpisodeGrain>($"t1b/{Guid.NewGuid()}");
        await g.Open(new EpisodeSpec(Math, id, 0, 1));
        var grade = await g.Grade(truncated: true);
        Assert.Equal(0, grade.Grade.Reward);
        Assert.NotEmpty(grade.Grade.Reason);
    }

    [Fact]
    public async Task InvalidTransitionsAreErrorsNamingTheState()
    {
        var fresh = Grains.GetGrain<IEpisodeGrain>($"t2/{Guid.NewGuid()}");
        var e = await Assert.ThrowsAnyAsync<Exception>(() => fresh.Step(AssistantTurn.Parse("hello<|end|>", false), false));
        Assert.Contains("cannot Step while Created", e.Message);
        e = await Assert.ThrowsAnyAsync<Exception>(() => fresh.Grade(false));
        Assert.Contains("cannot Grade while Created", e.Message);

        string id = await FirstTask(Math);
        var g = Grains.GetGrain<IEpisodeGrain>($"t2/{Guid.NewGuid()}");
        await g.Open(new EpisodeSpec(Math, id, 0, 1));
        e = await Assert.ThrowsAnyAsync<Exception>(() => g.Open(new EpisodeSpec(Math, id, 0, 1)));
        Assert.Contains("cannot Open while AwaitingModel", e.Message);
        e = await Assert.ThrowsAnyAsync<Exception>(() => g.Grade(false));
        Assert.Contains("cannot Grade while AwaitingModel", e.Message);
        await g.Step(AssistantTurn.Parse("7<|end|>", true), final: true);
        e = await Assert.ThrowsAnyAsync<Exception>(() => g.Step(AssistantTurn.Parse("8<|end|>", false), false));
        Assert.Contains("cannot Step while AwaitingGrade", e.Message);
        var grade = await g.Grade(false);
        Assert.True(grade.Grade.Reward < 1);
    }

    [Fact]
    public async Task AnUnknownEnvironmentOrTaskFailsTheEpisodeWithTheReason()
    {
        var g = Grains.GetGrain<IEpisodeGrain>($"t3/{Guid.NewGuid()}");
        var e = await Assert.ThrowsAnyAsync<Exception>(() => g.Open(new EpisodeSpec(Math with { Environment = "nope" }, "x", 0, 1)));
        Assert.Contains("no environment named 'nope'", e.Message);
        Assert.Equal(EpisodeState.Failed, await g.GetState());

        var h = Grains.GetGrain<IEpisodeGrain>($"t3/{Guid.NewGuid()}");
        e = await Assert.ThrowsAnyAsync<Exception>(() => h.Open(new EpisodeSpec(Math, "no-such-task", 0, 1)));
        Assert.Contains("no task 'no-such-task'", e.Message);
    }

    [Fact]
    public async Task AToolUseEpisodeAnswersToolCallsWithToolMessages()
    {
        var set = new TaskSetSpec("tool_use", new Dictionary<string, string> { ["difficulty"] = "1" }, "train", 5, 1);
        string id = await FirstTask(set);
        var g = Grains.GetGrain<IEpisodeGrain>($"t4/{Guid.NewGuid()}");
        var opening = await g.Open(new EpisodeSpec(set, id, 0, 1));
        Assert.NotEmpty(opening.Tools);
        var reply = await g.Step(AssistantTurn.Parse("<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"2+3\"}}</tool_call><|end|>", false), false);
        Assert.False(reply.Done);
        Assert.Contains(reply.Reply, m => m.Role == Role.Tool);
        // A malformed call gets an error message back, not a failed episode.
        reply = await g.Step(AssistantTurn.Parse("<tool_call>{not json</tool_call><|end|>", false), false);
        Assert.False(reply.Done);
        Assert.Equal(EpisodeState.AwaitingModel, await g.GetState());
    }

    private static async Task<string> ReferenceText(string taskId)
    {
        // Rebuild the task locally from the same plugin to read its reference (deterministic from the seed).
        var (envs, _) = Plugins.PluginLoader.LoadAll([Nemotron.Gym.TestSupport.RepoPaths.Plugins]);
        var env = await Plugins.HostedEnvironment.StartAsync(envs.Single(e => e.Descriptor.Name == "math"), Math.Settings, Plugins.HostLimits.Default);
        var task = (await env.LoadTasksAsync(new Abstractions.TaskQuery(Math.Split, Math.Count, Math.Seed))).Single(t => t.Id == taskId);
        return task.Reference[0].Content + "<|end|>";
    }
}
