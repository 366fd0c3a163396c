using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.ToolUse;

/// <summary>Procedural tool-use tasks: a request, what the verifier checks, and a reference episode.</summary>
public static class ToolTasks
{
    /// <summary>One generated task.</summary>
    public sealed record Generated(string Request, JsonObject Metadata, IReadOnlyList<AssistantTurn> Reference);

    private static readonly string[] Keys = ["color", "city", "pet", "total", "score", "code", "name", "plan"];
    private static readonly string[] Values = ["blue", "paris", "otter", "green", "tokyo", "falcon", "amber", "delta"];
    private static readonly string[] Titles = ["Dentist", "Standup", "Lunch", "Gym", "Review", "Call mom", "Haircut"];

    private static AssistantTurn Call(string name, JsonObject args, int index = 0) =>
        new("", "", null, [new ToolCall($"call_{index}", name, args)], []);

    private static AssistantTurn Say(string text) => AssistantTurn.FromContent(text);

    /// <summary>A task needing up to <paramref name="difficulty"/> tool calls.</summary>
    public static Generated Generate(Random rng, int difficulty)
    {
        int kinds = difficulty switch { 1 => 4, 2 => 6, _ => 7 };
        string date = $"2026-{rng.Next(1, 13):D2}-{rng.Next(1, 29):D2}";
        string key = Keys[rng.Next(Keys.Length)], value = Values[rng.Next(Values.Length)];
        int a = rng.Next(11, 99), b = rng.Next(11, 99);
        JsonObject State(JsonObject? store = null, JsonObject? calendar = null) => new() { ["store"] = store ?? new JsonObject(), ["calendar"] = calendar ?? new JsonObject() };
        // A required call is a tool name, or "name:arg=value" when an argument must match (the date listed, the key read).
        JsonObject Meta(JsonObject initial, string[] tools, string? answer = null, JsonObject? finalState = null)
        {
            var calls = tools.Select(t =>
            {
                var parts = t.Split(':');
                var c = new JsonObject { ["name"] = parts[0] };
                if (parts.Length > 1)
                {
                    var args = new JsonObject();
                    foreach (var kv in parts[1].Split('&')) args[kv[..kv.IndexOf('=')]] = kv[(kv.IndexOf('=') + 1)..];
                    c["arguments"] = args;
                }
                return (JsonNode)c;
            }).ToArray();
            var m = new JsonObject { ["initial_state"] = initial, ["required_calls"] = new JsonArray(calls) };
            if (answer != null) m["answer"] = answer;
            if (finalState != null) m["final_state"] = finalState;
            return m;
        }
        switch (rng.Next(kinds))
        {
            case 0:
            {
                char op = "+-*"[rng.Next(3)];
                long v = op == '+' ? a + b : op == '-' ? a - b : a * b;
                return new($"Use the calculator to compute {a} {op} {b}, then tell me the result.",
                    Meta(State(), ["calculator"], v.ToString()),
                    [Call("calculator", new JsonObject { ["expression"] = $"{a} {op} {b}" }), Say($"The result is {v}.")]);
            }
            case 1:
                return new($"What value is stored under the key \"{key}\"? Look it up.",
                    Meta(State(new JsonObject { [key] = value, ["other"] = "none" }), [$"kv_get:key={key}"], value),
                    [Call("kv_get", new JsonObject { ["key"] = key }), Say($"The value is {value}.")]);
            case 2:
                return new($"Store the value \"{value}\" under the key \"{key}\".",
                    Meta(State(), ["kv_set"], finalState: State(new JsonObject { [key] = value })),
                    [Call("kv_set", new JsonObject { ["key"] = key, ["value"] = value }), Say("Done.")]);
            case 3:
            {
                int n = rng.Next(1, 4);
                var events = Titles.OrderBy(_ => rng.Next()).Take(n).ToList();
                return new($"How many events do I have on {date}?",
                    Meta(State(calendar: new JsonObject { [date] = new JsonArray(events.Select(e => (JsonNode)e).ToArray()) }), [$"calendar_list:date={date}"], n.ToString()),
                    [Call("calendar_list", new JsonObject { ["date"] = date }), Say($"You have {n} events that day.")]);
            }
            case 4:
            {
                long v = a + b;
                return new($"Compute {a} + {b} with the calculator and store the result under the key \"{key}\".",
                    Meta(State(), ["calculator", "kv_set"], finalState: State(new JsonObject { [key] = v.ToString() })),
                    [Call("calculator", new JsonObject { ["expression"] = $"{a} + {b}" }), Call("kv_set", new JsonObject { ["key"] = key, ["value"] = v.ToString() }), Say($"Stored {v}.")]);
            }
            case 5:
            {
                string title = Titles[rng.Next(Titles.Length)];
                var existing = Titles.Where(t => t != title).OrderBy(_ => rng.Next()).Take(rng.Next(0, 3)).ToList();
                int count = existing.Count + 1;
                return new($"Add an event \"{title}\" on {date}, then tell me how many events that day has.",
                    Meta(State(calendar: existing.Count > 0 ? new JsonObject { [date] = new JsonArray(existing.Select(e => (JsonNode)e).ToArray()) } : null), [$"calendar_add:date={date}", $"calendar_list:date={date}"],
                        count.ToString(), State(calendar: new JsonObject { [date] = new JsonArray((JsonNode)title) })),
                    [Call("calendar_add", new JsonObject { ["date"] = date, ["title"] = title }), Call("calendar_list", new JsonObject { ["date"] = date }), Say($"That day now has {count} events.")]);
            }
            default:
            {
                int price = rng.Next(3, 40), n = rng.Next(2, 9);
                return new($"Read the value under \"price\", multiply it by {n} with the calculator, and store the result under \"total\".",
                    Meta(State(new JsonObject { ["price"] = price.ToString() }), ["kv_get:key=price", "calculator", "kv_set"], finalState: State(new JsonObject { ["total"] = (price * n).ToString() })),
                    [Call("kv_get", new JsonObject { ["key"] = "price" }), Call("calculator", new JsonObject { ["expression"] = $"{price} * {n}" }),
                     Call("kv_set", new JsonObject { ["key"] = "total", ["value"] = (price * n).ToString() }), Say($"The total is {price * n}.")]);
            }
        }
    }
}
