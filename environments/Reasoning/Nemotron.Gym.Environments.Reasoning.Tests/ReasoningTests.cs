using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Environments.Reasoning;

namespace Nemotron.Gym.Environments.Tests;

public class ReasoningTests
{
    private static Grade V(Family f, string content, JsonObject meta) => f.Verify(content, meta);

    [Fact]
    public void CountdownChecksNumbersOperatorsAndValue()
    {
        var meta = new JsonObject { ["numbers"] = new JsonArray(3, 5, 7, 2), ["target"] = 26, ["answer"] = "(3 + 5) * 2 + ... " };
        var c = new Countdown();
        Assert.Equal(1, V(c, "(3 + 5) * 2 + 7 + 3 - 3", meta).Reward == 1 ? 0 : 1); // 3 used twice: invalid
        Assert.Equal(1, V(c, "Answer: (5 + 7) * 2 + 2", meta).Reward == 1 ? 0 : 1); // 2 used twice
        Assert.Equal(1, V(c, "7 * 3 + 5", meta).Reward);
        Assert.Equal(1, V(c, "7 × 3 + 5 = 26", meta).Reward);
        Assert.Equal(0, V(c, "7 * 3 + 4", meta).Reward);          // 4 is not in the list
        Assert.Equal(0, V(c, "7 * 3 + 5; rm -rf /", meta).Reward); // junk characters
        Assert.Equal(0, V(c, "(3 + 5) * 2", meta).Reward);        // 16, not 26
        Assert.Equal(0, V(c, "", meta).Reward);
    }

    [Fact]
    public void SortingNeedsTheExactOrder()
    {
        var meta = new JsonObject { ["answer"] = "-2, 3, 9" };
        Assert.Equal(1, V(new Sorting(), "Answer: -2, 3, 9", meta).Reward);
        Assert.Equal(1, V(new Sorting(), "[-2, 3, 9]", meta).Reward);
        Assert.Equal(0, V(new Sorting(), "3, -2, 9", meta).Reward);
        Assert.Equal(0, V(new Sorting(), "-2, 3", meta).Reward);
    }

    [Fact]
    public void OrderingAcceptsOnlyTheOneName()
    {
        var meta = new JsonObject { ["answer"] = "Carol" };
        Assert.Equal(1, V(new Ordering(), "Carol is the shortest.", meta).Reward);
        Assert.Equal(0, V(new Ordering(), "Carol or Bob", meta).Reward);
    }

    [Fact]
    public void BaseConversionIgnoresCaseAndPrefix()
    {
        var meta = new JsonObject { ["answer"] = "1F", ["base"] = 16 };
        Assert.Equal(1, V(new BaseConversion(), "0x1f", meta).Reward);
        Assert.Equal(0, V(new BaseConversion(), "31", meta).Reward);
    }

    [Fact]
    public async Task EveryFamilyAppearsAndEveryReferencePasses()
    {
        var env = await EnvTestKit.Start<ReasoningEnvironment>(new() { ["difficulty"] = "3" });
        var tasks = await env.LoadTasksAsync(new TaskQuery("train", 160, 5), default);
        Assert.Equal(Family.All.Select(f => f.Name).Order(), tasks.Select(t => t.VerifierMetadata["family"]!.GetValue<string>()).Distinct().Order());
        foreach (var t in tasks)
            Assert.Equal(1, (await EnvTestKit.Play(env, t, t.Reference.ToArray())).Reward);
    }

    [Fact]
    public async Task UnknownFamiliesAreRefusedByName()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => EnvTestKit.Start<ReasoningEnvironment>(new() { ["families"] = "sorting,chess" }));
        Assert.Contains("chess", e.Message);
    }
}
