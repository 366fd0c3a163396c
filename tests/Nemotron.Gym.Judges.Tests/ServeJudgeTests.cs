using MessagePack;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Rewards.Judging;
using Nemotron.Gym.Serve.Tests;
using static Nemotron.Gym.Judges.Tests.GroupJudgingTests;

namespace Nemotron.Gym.Judges.Tests;

/// <summary>The judge client against our own `gym serve`, in process, over a tiny checkpoint.</summary>
public class ServeJudgeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TheJudgeTalksToGymServeAndAnUnreadableVerdictFromItIsMaskedWithTheReason()
    {
        // A long context: the judge's instructions and both replies are about 1,300 byte tokens.
        await using var server = await TestServer.StartAsync(TestCheckpoints.Random(seed: 5, context: 2048));
        var settings = new JudgeSettings { BaseUrl = server.V1.ToString(), Model = "tiny", MaxTokens = 24, TimeoutSeconds = 60, CacheEntries = 0 };
        var pool = new JudgePool(settings);

        var ask = new JudgeRequest(JudgePrompts.Pairwise([Message.User("Explain tides.")], "The Moon pulls the sea.", "Wind.", null));
        var first = await pool.CompleteAsync(ask, Ct);
        Assert.True(first.IsOk, first.Error);
        Assert.NotEmpty(first.Text);
        // The judge's seed reaches the server: the same attempt samples the same text.
        Assert.Equal(first.Text, (await pool.CompleteAsync(ask, Ct)).Text);

        // A random small model writes no verdict: the group is masked with the parse problem, never scored 0.
        var grades = await GroupJudging.GradeAsync(pool, true, [Member(0, "The Moon pulls the sea."), Member(1, "Wind.")], null,
            new GroupJudgingSettings(Swap: false, ParseRetries: 1), Ct);
        Assert.All(grades, g =>
        {
            Assert.Contains("unreadable verdict after 2 answer(s)", g.MaskReason);
            Assert.Equal(1, g.Components["judge_parse_failures"]);
            Assert.Equal("tiny@" + settings.BaseUrl, g.Evidence["judge"]);
        });
    }

    [Fact]
    public void MaskedGradesAndGroupMembersCrossTheGrainBoundaryIntact()
    {
        var options = MessagePackSerializerOptions.Standard.WithResolver(ConversationFormatters.Resolver);
        var masked = Grade.NotJudged("judge Timeout: no answer", evidence: new Dictionary<string, string> { ["judge"] = "j" });
        var member = new GroupMember(3, [Message.User("q"), Message.Assistant("a", "think")], masked, true);
        var back = MessagePackSerializer.Deserialize<GroupMember>(MessagePackSerializer.Serialize(member, options), options);
        Assert.Equal(member.SampleIndex, back.SampleIndex);
        Assert.Equal(member.Conversation, back.Conversation);
        Assert.True(back.Truncated);
        Assert.Equal("judge Timeout: no answer", back.Grade.MaskReason);
        Assert.Equal(masked.Components, back.Grade.Components);
        Assert.Null(MessagePackSerializer.Deserialize<Grade>(MessagePackSerializer.Serialize(Grade.Of(1, "ok"), options), options).MaskReason);
    }
}
