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
    public async Task WordOperationsChooseWhichWordProblemsAreAsked()
    {
        async Task<List<string>> Questions(string? operations)
        {
            var settings = new Dictionary<string, string> { ["difficulty"] = "3", ["families"] = "word", ["handwritten"] = "false" };
            if (operations != null) settings["word_operations"] = operations;
            var env = await EnvTestKit.Start<MathEnvironment>(settings);
            return (await env.LoadTasksAsync(new TaskQuery("train", 300, 5), default)).Select(t => t.Input[^1].Content).ToList();
        }
        var all = await Questions(null);
        Assert.Equal(all, await Questions("+, -, *")); // the default, spelt out: the same tasks in the same order
        Assert.Contains(all, q => q.Contains("bags"));
        var sums = await Questions("+,-");
        Assert.Equal(300, sums.Count);
        Assert.DoesNotContain(sums, q => q.Contains("bags"));
        Assert.Contains(sums, q => q.Contains("gets"));
        Assert.Contains(sums, q => q.Contains("gives away"));
        Assert.All(await Questions("*"), q => Assert.Contains("bags", q));
        var bad = await Assert.ThrowsAsync<ArgumentException>(async () => await Questions("+,/"));
        Assert.Contains("word_operations", bad.Message);
        Assert.Contains("'/'", bad.Message);
    }

    [Fact]
    public async Task WordMaxBoundsTheWordProblemsAmountsAndItsDifficultyValueDrawsTheSameTasks()
    {
        async Task<List<string>> Questions(string? wordMax)
        {
            var settings = new Dictionary<string, string> { ["difficulty"] = "3", ["families"] = "word", ["handwritten"] = "false", ["word_operations"] = "+,-" };
            if (wordMax != null) settings["word_max"] = wordMax;
            var env = await EnvTestKit.Start<MathEnvironment>(settings);
            return (await env.LoadTasksAsync(new TaskQuery("train", 400, 7), default)).Select(t => t.Input[^1].Content).ToList();
        }
        // The numbers of a question: the starting amount and the second one ("has 412 ... gives away 130").
        static int[] Numbers(string q) => [.. System.Text.RegularExpressions.Regex.Matches(q, @"\d+").Select(m => int.Parse(m.Value))];
        var byDifficulty = await Questions(null);
        // 300 is difficulty 3's bound (second numbers below 200): the demo's SFT data and an uncalibrated run are unchanged.
        Assert.Equal(byDifficulty, await Questions("300"));
        var larger = await Questions("800");
        Assert.Equal(400, larger.Count);
        // Sums start below 800 and add below 533; differences start from a sum of the two and give the second away.
        Assert.All(larger.Where(q => q.Contains("gets")), q => { var n = Numbers(q); Assert.True(n[0] < 800 && n[1] < 533, q); });
        Assert.All(larger.Where(q => q.Contains("gives away")), q => { var n = Numbers(q); Assert.True(n[1] < 533 && n[0] - n[1] < 800, q); });
        Assert.Contains(larger, q => Numbers(q)[0] >= 300 && q.Contains("gets"));
        foreach (var bad in new[] { "5", "1000" })
            Assert.Contains("word_max", (await Assert.ThrowsAnyAsync<Exception>(async () => await Questions(bad))).Message);
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

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task WordAndLinearReferencesWorkTheSumsStepByStepAndEveryStepIsRight(int difficulty)
    {
        var env = await EnvTestKit.Start<MathEnvironment>(new() { ["difficulty"] = difficulty.ToString(), ["families"] = "linear,word", ["handwritten"] = "false" });
        foreach (var task in await env.LoadTasksAsync(new TaskQuery("train", 300, difficulty), default))
        {
            var reference = task.Reference[0];
            string answer = task.VerifierMetadata["answer"]!.GetValue<string>();
            Assert.Equal(1, (await EnvTestKit.Play(env, task, reference)).Reward);
            string steps = reference.Reasoning ?? "";
            Assert.Equal($"The answer is \\boxed{{{answer}}}.", reference.Content);
            Assert.NotEmpty(steps);
            // Every written equation with an operator on its left ("6+10-9=7", "1+0+1=2", "5*3+4=19", "x=20/4=5") holds.
            int checkedSteps = 0;
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(steps, @"(?<![\dx])(-?\d+(?:[+\-/*]\d+)+)=(-?\d+)"))
            {
                Assert.Equal(long.Parse(m.Groups[2].Value), EvaluateLeftToRight(m.Groups[1].Value));
                checkedSteps++;
            }
            Assert.True(checkedSteps > 0, steps);
            // The working ends in the answer.
            Assert.Matches($@"(So {System.Text.RegularExpressions.Regex.Escape(answer)}|x=-?\d+/\d+={System.Text.RegularExpressions.Regex.Escape(answer)})\.$", steps);
        }
    }

    [Fact]
    public void ColumnWorkingIsTheArithmeticCorpusFormat()
    {
        // The demo's arithmetic corpus and the math references share this working; its exact text is what the
        // policy learns in pretraining and SFT.
        Assert.Equal("25+9. 5+9=14, 4 c1. 2+0+1=3. So 34.", Shared.ColumnWorking.Of(25, '+', 9));
        Assert.Equal("216-9. 6+10-9=7, b1. 1-1-0=0. 2-0=2. So 207.", Shared.ColumnWorking.Of(216, '-', 9));
        Assert.Equal("95+7. 5+7=12, 2 c1. 9+0+1=10, 0 c1. 1. So 102.", Shared.ColumnWorking.Of(95, '+', 7));
        Assert.Equal("5*39. 5*9=45, 5 c4. 5*3+4=19, 9 c1. 1. So 195.", Shared.ColumnWorking.Of(5, '*', 39));
        Assert.Equal("3*12. 3*2=6. 3*1=3. So 36.", Shared.ColumnWorking.Of(3, '*', 12));
        Assert.Throws<ArgumentException>(() => Shared.ColumnWorking.Of(3, '-', 9));
        Assert.Throws<ArgumentException>(() => Shared.ColumnWorking.Of(12, '*', 9));
    }

    private static long EvaluateLeftToRight(string expression)
    {
        var parts = System.Text.RegularExpressions.Regex.Matches(expression, @"^-?\d+|[+\-/*]\d+");
        long value = long.Parse(parts[0].Value);
        foreach (System.Text.RegularExpressions.Match p in parts.Skip(1))
        {
            long n = long.Parse(p.Value[1..]);
            value = p.Value[0] switch { '+' => value + n, '-' => value - n, '*' => value * n, _ => value % n == 0 ? value / n : throw new Xunit.Sdk.XunitException($"{expression}: not exact") };
        }
        return value;
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
