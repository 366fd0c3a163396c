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
    public void OrderingWorkingIsTheChainOfTheFactsEndingInTheAnswer()
    {
        var rng = new Random(4);
        for (int i = 0; i < 200; i++)
        {
            var p = new Ordering().Generate(rng, 1 + i % 5);
            // "Carol>Bob>Alice. The shortest is Alice."
            var chain = p.Steps!.Split(". ")[0].Split('>');
            Assert.Equal(chain.Length, chain.Distinct().Count());
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(p.Question, @"(\w+) is taller than (\w+)\."))
                Assert.True(Array.IndexOf(chain, m.Groups[1].Value) == Array.IndexOf(chain, m.Groups[2].Value) - 1, $"{p.Steps} does not follow '{m.Value}'");
            Assert.Equal(p.Question.Contains("tallest") ? chain[0] : chain[^1], p.Answer);
            Assert.EndsWith($" is {p.Answer}.", p.Steps);
        }
    }

    [Fact]
    public void ModularWorkingIsShortDivisionEndingInTheRemainder()
    {
        Assert.Equal("47 mod 3. 4: 3*1=3, r1. 17: 3*5=15, r2. So 2.", Modular.ShortDivisionSteps(47, 3));
        Assert.Equal("5 mod 6. 5: 6*0=0, r5. So 5.", Modular.ShortDivisionSteps(5, 6));
        var rng = new Random(9);
        for (int i = 0; i < 300; i++)
        {
            var p = new Modular().Generate(rng, 1 + i % 5);
            Assert.EndsWith($"So {p.Answer}.", p.Steps);
            // Each step: the number in hand, the largest multiple of m not above it, the rest smaller than m.
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(p.Steps!, @"(\d+): (\d+)\*(\d+)=(\d+), r(\d+)\."))
            {
                int current = int.Parse(m.Groups[1].Value), mod = int.Parse(m.Groups[2].Value), q = int.Parse(m.Groups[3].Value);
                Assert.Equal(mod * q, int.Parse(m.Groups[4].Value));
                Assert.Equal(current - mod * q, int.Parse(m.Groups[5].Value));
                Assert.InRange(current - mod * q, 0, mod - 1);
            }
        }
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
        // Ordering's reference carries its working as reasoning, the name alone as the answer.
        var ordering = tasks.First(t => t.VerifierMetadata["family"]!.GetValue<string>() == "ordering").Reference[0];
        Assert.Contains(">", ordering.Reasoning);
        Assert.DoesNotContain(">", ordering.Content);
    }

    [Fact]
    public async Task FamiliesThatRunOutOfQuestionsDoNotCutTheSetShort()
    {
        // Letter counting has about a dozen held-out questions at difficulty 1 and remainders a few dozen; sorting
        // fills the rest, so a held-out set of 400 is complete and every prompt in it distinct.
        var env = await EnvTestKit.Start<ReasoningEnvironment>(new() { ["difficulty"] = "1", ["families"] = "modular,letter_count,sorting" });
        foreach (int seed in new[] { 1, 11, 1011 })
        {
            var tasks = await env.LoadTasksAsync(new TaskQuery("heldout", 400, seed), default);
            Assert.Equal(400, tasks.Count);
            Assert.Equal(400, tasks.Select(t => t.Input[^1].Content).Distinct().Count());
            var perFamily = tasks.GroupBy(t => t.VerifierMetadata["family"]!.GetValue<string>()).ToDictionary(g => g.Key, g => g.Count());
            Assert.InRange(perFamily["letter_count"], 1, 30);
            Assert.True(perFamily["sorting"] > 300, string.Join(", ", perFamily));
            // A larger count extends a smaller one.
            Assert.Equal((await env.LoadTasksAsync(new TaskQuery("heldout", 100, seed), default)).Select(t => t.ToJsonLine()), tasks.Take(100).Select(t => t.ToJsonLine()));
        }
    }

    [Fact]
    public async Task SortingNumbersSetsHowManyNumbersASortingPuzzleHas()
    {
        static int Numbers(TaskRecord t) => t.Input[^1].Content.Split(':')[1].Split('.')[0].Split(',').Length;
        static async Task<List<TaskRecord>> Sorting(Dictionary<string, string> settings)
        {
            var env = await EnvTestKit.Start<ReasoningEnvironment>(settings);
            var tasks = (await env.LoadTasksAsync(new TaskQuery("train", 60, 3), default)).ToList();
            foreach (var t in tasks)
                Assert.Equal(1, (await EnvTestKit.Play(env, t, t.Reference.ToArray())).Reward);
            return tasks;
        }
        // By difficulty: 4 numbers at 1, 6 at 2; the setting overrides it, for sorting only.
        Assert.All(await Sorting(new() { ["difficulty"] = "1", ["families"] = "sorting" }), t => Assert.Equal(4, Numbers(t)));
        Assert.All(await Sorting(new() { ["difficulty"] = "2", ["families"] = "sorting" }), t => Assert.Equal(6, Numbers(t)));
        var five = await Sorting(new() { ["difficulty"] = "1", ["families"] = "sorting,letter_count", ["sorting_numbers"] = "5" });
        Assert.All(five.Where(t => t.VerifierMetadata["family"]!.GetValue<string>() == "sorting"), t => Assert.Equal(5, Numbers(t)));
        Assert.Contains(five, t => t.VerifierMetadata["family"]!.GetValue<string>() == "letter_count");

        var one = await Assert.ThrowsAsync<ArgumentException>(() => EnvTestKit.Start<ReasoningEnvironment>(new() { ["sorting_numbers"] = "1" }));
        Assert.Contains("sorting_numbers", one.Message);
        // Values outside 0-12 are refused by the host, from the option's range (ConfigValues), before the environment starts.
    }

    [Fact]
    public async Task UnknownFamiliesAreRefusedByName()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => EnvTestKit.Start<ReasoningEnvironment>(new() { ["families"] = "sorting,chess" }));
        Assert.Contains("chess", e.Message);
    }
}
