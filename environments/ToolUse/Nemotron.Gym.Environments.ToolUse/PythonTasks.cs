using System.Globalization;
using System.Text.Json.Nodes;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.ToolUse;

/// <summary>
/// Procedural tasks that need the python tool: computations too long to do by hand, whose answer C# computes for the
/// verifier. One kind takes two calls, the second using a variable the first one left (the tool keeps state).
/// </summary>
public static class PythonTasks
{
    private static AssistantTurn Python(string code, int index = 0) =>
        new("", "", null, [new ToolCall($"call_{index}", PythonTool.Definition.Name, new JsonObject { ["code"] = code })], []);

    private static JsonObject Meta(long answer, int calls)
    {
        var required = new JsonArray();
        for (int i = 0; i < calls; i++) required.Add(new JsonObject { ["name"] = PythonTool.Definition.Name });
        return new JsonObject
        {
            ["initial_state"] = new JsonObject { ["store"] = new JsonObject(), ["calendar"] = new JsonObject() },
            ["required_calls"] = required,
            ["answer"] = answer.ToString(CultureInfo.InvariantCulture),
        };
    }

    /// <summary>One task.</summary>
    public static ToolTasks.Generated Generate(Random rng)
    {
        switch (rng.Next(3))
        {
            case 0:
            {
                int n = rng.Next(50, 500);
                long sum = 0;
                for (long i = 1; i <= n; i++) sum += i * i;
                return new($"Use the python tool to compute the sum of the squares of the integers from 1 to {n}, then tell me the result.",
                    Meta(sum, 1), [Python($"sum(i * i for i in range(1, {n} + 1))"), AssistantTurn.FromContent($"The sum is {sum}.")]);
            }
            case 1:
            {
                int n = rng.Next(1000, 100000), a = rng.Next(3, 12), b = rng.Next(13, 30);
                long count = 0;
                for (int i = 1; i <= n; i++) if (i % a == 0 || i % b == 0) count++;
                return new($"Use the python tool to count the integers from 1 to {n} that are divisible by {a} or by {b}, then tell me how many there are.",
                    Meta(count, 1), [Python($"len([i for i in range(1, {n} + 1) if i % {a} == 0 or i % {b} == 0])"), AssistantTurn.FromContent($"There are {count}.")]);
            }
            default:
            {
                var numbers = Enumerable.Range(0, rng.Next(8, 15)).Select(_ => rng.Next(-500, 1000)).ToList();
                long top3 = numbers.OrderDescending().Take(3).Sum(x => (long)x);
                var list = "[" + string.Join(", ", numbers) + "]";
                return new($"With the python tool, first store the numbers {list} in a variable named data. Then, in a second python call, compute the sum of the three largest values in data and tell me the result.",
                    Meta(top3, 2), [Python($"data = {list}"), Python("sum(sorted(data)[-3:])", 1), AssistantTurn.FromContent($"The sum of the three largest is {top3}.")]);
            }
        }
    }
}
