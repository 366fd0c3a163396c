using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Environments.Math;

namespace Nemotron.Gym.Environments.Tests;

public class MathEnvironmentTests
{
    [Theory]
    [InlineData("The answer is \\boxed{\\frac{3}{4}}", "0.75", 1)]
    [InlineData("so x = \\boxed{-3}", "-3", 1)]
    [InlineData("It's 50%.", "0.5", 1)]
    [InlineData("Answer: 1,500 dollars", "1500", 1)]
    [InlineData("\\boxed{(2,-3)}", "(2, -3)", 1)]
    [InlineData("\\boxed{(-3, 2)}", "(2, -3)", 0)]
    [InlineData("\\boxed{\\{3, -3\\}}", "{-3, 3}", 1)]
    [InlineData("Answer: 6\\pi", "6\\pi", 1)]
    [InlineData("Answer: 18.85", "6\\pi", 0)]
    [InlineData("I think it is 7 or maybe 8", "7", 0)]
    [InlineData("", "7", 0)]
    public void VerifierCases(string response, string expected, double reward)
    {
        var g = MathEnvironment.Verify(response, expected);
        Assert.Equal(reward, g.Reward);
        Assert.False(string.IsNullOrEmpty(g.Reason));
        Assert.Equal(expected, g.Evidence["expected"]);
    }

    [Fact]
    public async Task SplitsAreDisjointAndRepeatable()
    {
        var env = await EnvTestKit.Start<MathEnvironment>();
        var train = await env.LoadTasksAsync(new TaskQuery("train", 300, 1), default);
        var held = await env.LoadTasksAsync(new TaskQuery("heldout", 100, 1), default);
        Assert.Empty(train.Select(t => t.Input[^1].Content).Intersect(held.Select(t => t.Input[^1].Content)));
        var again = await env.LoadTasksAsync(new TaskQuery("train", 300, 1), default);
        Assert.Equal(train.Select(t => t.ToJsonLine()), again.Select(t => t.ToJsonLine()));
        Assert.Contains(train, t => t.Id.StartsWith("math-hw-"));
        Assert.All(train, t => Assert.Empty(env.ValidateTask(t)));
    }

    [Fact]
    public async Task DifficultyGrowsTheNumbers()
    {
        async Task<double> MeanAnswer(int d)
        {
            var env = await EnvTestKit.Start<MathEnvironment>(new() { ["difficulty"] = d.ToString(), ["families"] = "arithmetic", ["handwritten"] = "false" });
            var tasks = await env.LoadTasksAsync(new TaskQuery("train", 200, 3), default);
            return tasks.Average(t => System.Math.Abs(double.Parse(t.VerifierMetadata["answer"]!.GetValue<string>())));
        }
        Assert.True(await MeanAnswer(3) > 5 * await MeanAnswer(1));
    }

    [Fact]
    public async Task ATruncatedAnswerGetsNothingWithAReason()
    {
        var env = await EnvTestKit.Start<MathEnvironment>();
        var task = (await env.LoadTasksAsync(new TaskQuery("train", 1, 1), default))[0];
        var answer = task.Reference[0] with { Truncated = true };
        var g = await EnvTestKit.Play(env, task, answer);
        Assert.Equal(0, g.Reward);
        Assert.Contains("cut off", g.Reason);
    }
}
