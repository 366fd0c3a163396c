using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Environments.Arithmetic;

namespace Nemotron.Gym.Environments.Tests;

public class ArithmeticEnvironmentTests
{
    [Fact]
    public async Task TrainAndHeldOutNeverShareAProblem()
    {
        var env = await EnvTestKit.Start<ArithmeticEnvironment>();
        var train = await env.LoadTasksAsync(new TaskQuery("train", 400, 1), default);
        var heldout = await env.LoadTasksAsync(new TaskQuery("heldout", 200, 2), default);
        Assert.Equal(400, train.Count);
        Assert.Equal(200, heldout.Count);
        static string Key(TaskRecord t) => $"{t.VerifierMetadata["a"]}{t.VerifierMetadata["op"]}{t.VerifierMetadata["b"]}";
        Assert.Empty(train.Select(Key).Intersect(heldout.Select(Key)));
        Assert.All(heldout, t => Assert.True(new ArithmeticProblem((int)t.VerifierMetadata["a"]!, ((string)t.VerifierMetadata["op"]!)[0], (int)t.VerifierMetadata["b"]!).IsHeldOut));
    }

    [Fact]
    public async Task TheSameQueryGivesTheSameTasks()
    {
        var env = await EnvTestKit.Start<ArithmeticEnvironment>();
        var a = await env.LoadTasksAsync(new TaskQuery("train", 50, 7), default);
        var b = await env.LoadTasksAsync(new TaskQuery("train", 50, 7), default);
        Assert.Equal(a.Select(t => t.ToJsonLine()), b.Select(t => t.ToJsonLine()));
    }

    [Fact]
    public async Task ReferencesEarnFullRewardAndWrongOrCutOffAnswersNone()
    {
        var env = await EnvTestKit.Start<ArithmeticEnvironment>();
        foreach (var task in await env.LoadTasksAsync(new TaskQuery("train", 30, 3), default))
        {
            Assert.Empty(env.ValidateTask(task));
            string answer = task.VerifierMetadata["answer"]!.GetValue<string>();
            Assert.Equal(1, (await EnvTestKit.Play(env, task, task.Reference[0])).Reward);
            Assert.Equal(1, (await EnvTestKit.Play(env, task, AssistantTurn.Parse($"<think>working</think> {answer} <|end|>"))).Reward);
            var wrong = await EnvTestKit.Play(env, task, AssistantTurn.Parse($"{int.Parse(answer) + 1}<|end|>"));
            Assert.Equal(0, wrong.Reward);
            Assert.Contains($"expected {answer}", wrong.Reason);
            // A turn that never ended was cut off at the length limit: no reward even with the right digits.
            Assert.Equal(0, (await EnvTestKit.Play(env, task, AssistantTurn.Parse(answer, final: true))).Reward);
        }
    }

    [Fact]
    public async Task SmallDigitCountsStopWhenTheProblemsRunOut()
    {
        var env = await EnvTestKit.Start<ArithmeticEnvironment>(new() { ["max_digits"] = "1" });
        var tasks = await env.LoadTasksAsync(new TaskQuery("heldout", 5000, 1), default);
        Assert.InRange(tasks.Count, 1, 200); // at most 10×10 sums and 55 differences exist, a tenth of them held out
        Assert.Equal(tasks.Count, tasks.Select(t => t.VerifierMetadata.ToJsonString()).Distinct().Count());
    }
}
