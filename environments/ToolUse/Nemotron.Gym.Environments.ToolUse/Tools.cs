using System.Globalization;
using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Rewards;

namespace Nemotron.Gym.Environments.ToolUse;

/// <summary>
/// The simulated world of an episode: a key-value store and a calendar (date → event titles), plus a
/// calculator. Every tool call is checked (name, arguments, types) and either changes the state and
/// returns a result, or returns an error text; nothing the model sends can throw.
/// </summary>
public sealed class ToolState
{
    /// <summary>The key-value store.</summary>
    public SortedDictionary<string, string> Store { get; } = new(StringComparer.Ordinal);
    /// <summary>The calendar.</summary>
    public SortedDictionary<string, List<string>> Calendar { get; } = new(StringComparer.Ordinal);

    /// <summary>The tools offered to the model.</summary>
    public static readonly IReadOnlyList<ToolDefinition> Definitions =
    [
        Def("calculator", "Evaluate an arithmetic expression (+ - * / ^ and parentheses).", ("expression", "string")),
        Def("kv_get", "Read the value stored under a key.", ("key", "string")),
        Def("kv_set", "Store a value under a key (replacing any old value).", ("key", "string"), ("value", "string")),
        Def("kv_delete", "Remove a key.", ("key", "string")),
        Def("calendar_add", "Add an event on a date (YYYY-MM-DD).", ("date", "string"), ("title", "string")),
        Def("calendar_list", "List the events on a date (YYYY-MM-DD).", ("date", "string")),
    ];

    private static ToolDefinition Def(string name, string description, params (string Name, string Type)[] args)
    {
        var props = new JsonObject();
        foreach (var (n, t) in args) props[n] = new JsonObject { ["type"] = t };
        return new ToolDefinition(name, description, new JsonObject
        {
            ["type"] = "object", ["properties"] = props, ["required"] = new JsonArray(args.Select(a => (JsonNode)a.Name).ToArray()),
        });
    }

    /// <summary>Runs one call; returns the tool's answer text and whether it was an error.</summary>
    public (string Result, bool Error) Execute(ToolCall call)
    {
        string? Arg(string name) => call.Arguments[name] switch
        {
            JsonValue v when v.TryGetValue(out string? s) => s,
            JsonValue v when v.TryGetValue(out double d) => d.ToString(CultureInfo.InvariantCulture),
            _ => null,
        };
        var def = Definitions.FirstOrDefault(d => d.Name == call.Name);
        if (def == null) return ($"error: unknown tool '{Short(call.Name)}' (available: {string.Join(", ", Definitions.Select(d => d.Name))})", true);
        foreach (var required in def.Parameters["required"]!.AsArray().Select(x => x!.GetValue<string>()))
            if (Arg(required) is null) return ($"error: {call.Name} needs a string argument '{required}'", true);
        switch (call.Name)
        {
            case "calculator":
                var value = MathExpression.TryEvaluate(Arg("expression")!);
                return value is { } v ? (Format(v), false) : ($"error: cannot evaluate '{Short(Arg("expression")!)}'", true);
            case "kv_get":
                return Store.TryGetValue(Arg("key")!, out var got) ? (got, false) : ($"error: no key '{Short(Arg("key")!)}'", true);
            case "kv_set":
                // Too long is refused and said so: a key cut short would later be "no key" under the name the model used.
                if ((TooLong("key", Arg("key")!) ?? TooLong("value", Arg("value")!)) is { } tooLong) return (tooLong, true);
                if (Store.Count >= 100 && !Store.ContainsKey(Arg("key")!)) return ("error: the store is full (100 keys)", true);
                Store[Arg("key")!] = Arg("value")!;
                return ("ok", false);
            case "kv_delete":
                return Store.Remove(Arg("key")!) ? ("ok", false) : ($"error: no key '{Short(Arg("key")!)}'", true);
            case "calendar_add":
            {
                string date = Arg("date")!;
                if (!DateOnly.TryParseExact(date, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _)) return ($"error: '{Short(date)}' is not a date like 2026-03-14", true);
                if (!Calendar.TryGetValue(date, out var events)) Calendar[date] = events = [];
                if (events.Count >= 50) return ("error: that day is full", true);
                if (TooLong("title", Arg("title")!) is { } titleTooLong) return (titleTooLong, true);
                events.Add(Arg("title")!);
                return ("ok", false);
            }
            case "calendar_list":
            {
                string date = Arg("date")!;
                if (!DateOnly.TryParseExact(date, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _)) return ($"error: '{Short(date)}' is not a date like 2026-03-14", true);
                var events = Calendar.GetValueOrDefault(date) ?? [];
                return (new JsonArray(events.Select(e => (JsonNode)e).ToArray()).ToJsonString(), false);
            }
        }
        return ("error: unsupported", true);
    }

    /// <summary>The longest key, value or title stored.</summary>
    public const int MaxLength = 200;

    private static string Short(string s) => s.Length <= MaxLength ? s : s[..MaxLength];

    private static string? TooLong(string what, string text) =>
        text.Length <= MaxLength ? null : $"error: the {what} is {text.Length} characters long; at most {MaxLength} are stored (nothing was changed)";

    /// <summary>Numbers as a calculator shows them: integers without a decimal point.</summary>
    public static string Format(double v) => Math.Abs(v - Math.Round(v)) < 1e-9 && Math.Abs(v) < 1e15 ? ((long)Math.Round(v)).ToString(CultureInfo.InvariantCulture) : v.ToString("G10", CultureInfo.InvariantCulture);

    /// <summary>The state as JSON (for task metadata and evidence).</summary>
    public JsonObject ToJson() => new()
    {
        ["store"] = new JsonObject(Store.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        ["calendar"] = new JsonObject(Calendar.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)new JsonArray(kv.Value.Select(e => (JsonNode)e).ToArray())))),
    };

    /// <summary>A state from JSON.</summary>
    public static ToolState FromJson(JsonObject? o)
    {
        var s = new ToolState();
        if (o?["store"] is JsonObject store) foreach (var (k, v) in store) s.Store[k] = v!.GetValue<string>();
        if (o?["calendar"] is JsonObject cal) foreach (var (k, v) in cal) s.Calendar[k] = v!.AsArray().Select(e => e!.GetValue<string>()).ToList();
        return s;
    }
}
