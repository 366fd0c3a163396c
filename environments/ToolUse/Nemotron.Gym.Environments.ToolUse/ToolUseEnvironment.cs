using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Rewards;

namespace Nemotron.Gym.Environments.ToolUse;

/// <summary>
/// Multi-turn function calling. The model calls simulated tools (calculator, key-value store, calendar)
/// with JSON arguments; the environment executes them against the episode's state and answers with tool
/// messages; the episode ends when the model answers without calling a tool. Malformed or failing calls
/// come back as error messages in the episode, never as exceptions. The grade checks the final answer,
/// the final state and that the required tools were used. With <c>python: true</c> the model also has a
/// <c>python</c> tool (<see cref="PythonTool"/>: a sandbox session per episode, state kept between calls) and a share
/// of the tasks need it; an episode whose sandbox failed is not judged (the trainer masks it), never graded 0.
/// </summary>
public sealed class ToolUseEnvironment : EnvironmentBase
{
    /// <summary>Tool calls an episode may make before it is ended.</summary>
    public const int MaxSteps = 8;

    /// <inheritdoc />
    public override EnvironmentDescriptor Descriptor { get; } = new(
        "tool_use", "1.0.0",
        "Multi-turn function calling with a calculator, a key-value store and a calendar; graded on the final answer, the final state and the tools used.",
        [
            new ConfigOption("difficulty", ConfigType.Integer, "2", "1: one tool call; 2: two; 3: up to three, mixing tools.", 1, 3),
            new ConfigOption("python", ConfigType.Boolean, "false", "Offer a python tool (a sandbox session per episode; the host must offer a sandbox) and make about a third of the tasks need it."),
        ],
        ["train", "heldout"]);

    private const string SystemPrompt = "You are an assistant with tools. Call a tool when the user asks you to use it, then give a short final answer.";

    private ISandboxService? _sandbox;
    private bool _python;

    /// <summary>Every tool offered: the simulated ones, and python when it is on.</summary>
    public IReadOnlyList<ToolDefinition> ToolDefinitions => _python ? [.. ToolState.Definitions, PythonTool.Definition] : ToolState.Definitions;

    /// <inheritdoc />
    public override async ValueTask InitializeAsync(EnvironmentContext context, CancellationToken cancellation)
    {
        await base.InitializeAsync(context, cancellation);
        _python = Context.GetBool("python");
        _sandbox = Context.Services.Get<ISandboxService>();
        if (_python && _sandbox is null)
            Context.Log.Write("tool_use: python is on but the host offers no sandbox; episodes that call python are not judged (the trainer masks them)");
    }

    /// <inheritdoc />
    public override ValueTask<IReadOnlyList<TaskRecord>> LoadTasksAsync(TaskQuery query, CancellationToken cancellation)
    {
        if (query.Split is not ("train" or "heldout")) throw new ArgumentException($"tool_use: unknown split '{query.Split}' (train, heldout)");
        int difficulty = Context.GetInt("difficulty");
        int target = query.Count > 0 ? query.Count : 1000;
        var rng = new Random(query.Seed * 2 + (query.Split == "heldout" ? 1 : 0));
        var tasks = new List<TaskRecord>();
        for (int i = 0; i < target; i++)
        {
            var t = _python && rng.Next(3) == 0 ? PythonTasks.Generate(rng) : ToolTasks.Generate(rng, difficulty);
            tasks.Add(new TaskRecord
            {
                Id = $"tool-{query.Split}-{i:D5}",
                Input = [Message.System(SystemPrompt), Message.User(t.Request)],
                Tools = ToolDefinitions,
                VerifierMetadata = t.Metadata,
                Reference = t.Reference,
            });
        }
        return ValueTask.FromResult<IReadOnlyList<TaskRecord>>(tasks);
    }

    /// <inheritdoc />
    public override IReadOnlyList<string> ValidateTask(TaskRecord task)
    {
        var p = new List<string>();
        var m = task.VerifierMetadata;
        if (m["initial_state"] is not JsonObject) p.Add("verifier_metadata.initial_state must be an object");
        if (m["required_calls"] is not JsonArray calls) p.Add("verifier_metadata.required_calls must be a list");
        else foreach (var c in calls)
            if (c?["name"]?.GetValue<string>() is not { } n || ToolDefinitions.All(d => d.Name != n)) p.Add($"verifier_metadata.required_calls: unknown tool in {c?.ToJsonString()}");
        if (m["answer"] is null && m["final_state"] is null) p.Add("verifier_metadata needs an answer or a final_state to check");
        if (task.Tools.Count == 0) p.Add("the task offers no tools");
        return p;
    }

    /// <inheritdoc />
    public override ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation) =>
        ValueTask.FromResult<IEpisode>(new Episode(task, _python ? new PythonTool(_sandbox) : null));

    private sealed class Episode(TaskRecord task, PythonTool? python) : IEpisode
    {
        private readonly ToolState _state = ToolState.FromJson(task.VerifierMetadata["initial_state"] as JsonObject);
        private readonly List<string> _calls = [];
        private readonly List<ToolCall> _succeeded = [];
        private int _errors, _steps;
        private string? _finalAnswer;
        private bool _truncated;

        public IReadOnlyList<Message> Opening => task.Input;
        public IReadOnlyList<ToolDefinition> Tools => task.Tools;

        public async ValueTask<StepResult> StepAsync(AssistantTurn turn, CancellationToken cancellation)
        {
            _steps++;
            if (turn.Truncated) { _truncated = true; return StepResult.End; }
            var replies = new List<Message>();
            foreach (var error in turn.FormatErrors)
            {
                _errors++;
                replies.Add(Message.ToolResult("format_error", "error", $"error: {error}. Call a tool as <tool_call>{{\"name\": ..., \"arguments\": {{...}}}}</tool_call>."));
            }
            foreach (var call in turn.ToolCalls)
            {
                var (result, isError) = python is not null && call.Name == PythonTool.Definition.Name
                    ? await python.ExecuteAsync(call, cancellation) : _state.Execute(call);
                _calls.Add($"{call.Name}({call.Arguments.ToJsonString()}) -> {result}");
                if (isError) _errors++;
                else _succeeded.Add(call);
                replies.Add(Message.ToolResult(call.Id, call.Name, result));
            }
            if (replies.Count == 0)
            {
                _finalAnswer = turn.Content;
                return StepResult.End;
            }
            if (_steps >= MaxSteps) return StepResult.End;
            return StepResult.Continue([.. replies]);
        }

        public ValueTask<Grade> GradeAsync(CancellationToken cancellation)
        {
            var m = task.VerifierMetadata;
            var components = new Dictionary<string, double>();
            var evidence = new Dictionary<string, string>
            {
                ["calls"] = _calls.Count == 0 ? "(none)" : string.Join("; ", _calls.Take(20)),
                ["final_answer"] = _finalAnswer ?? "(none)",
                ["final_state"] = _state.ToJson().ToJsonString(),
            };
            var reasons = new List<string>();
            // Each required call needs a successful call of that tool whose pinned arguments match.
            var missing = new List<string>();
            foreach (var req in (m["required_calls"] as JsonArray ?? []).OfType<JsonObject>())
            {
                string name = req["name"]!.GetValue<string>();
                var pinned = req["arguments"] as JsonObject ?? new JsonObject();
                bool made = _succeeded.Any(c => c.Name == name && pinned.All(kv => c.Arguments[kv.Key]?.ToString() == kv.Value?.ToString()));
                if (!made) missing.Add(pinned.Count == 0 ? name : $"{name}({string.Join(", ", pinned.Select(kv => $"{kv.Key}={kv.Value}"))})");
            }
            components["tools_used"] = missing.Count == 0 ? 1 : 0;
            if (missing.Count > 0) reasons.Add($"did not call {string.Join(", ", missing)}");
            if (m["answer"]?.GetValue<string>() is { } expected)
            {
                bool ok = _finalAnswer != null && AnswerMatches(_finalAnswer, expected);
                components["answer_correct"] = ok ? 1 : 0;
                evidence["expected_answer"] = expected;
                reasons.Add(_finalAnswer == null ? "gave no final answer" : ok ? $"answered {expected}" : $"the answer does not state {expected}");
            }
            if (m["final_state"] is JsonObject want)
            {
                var expectedState = ToolState.FromJson(want);
                bool ok = expectedState.Store.All(kv => _state.Store.TryGetValue(kv.Key, out var v) && v == kv.Value)
                    && expectedState.Calendar.All(kv => _state.Calendar.TryGetValue(kv.Key, out var ev) && kv.Value.All(ev.Contains));
                components["state_correct"] = ok ? 1 : 0;
                evidence["expected_state"] = want.ToJsonString();
                reasons.Add(ok ? "the final state is right" : "the final state is wrong");
            }
            if (_truncated) reasons.Add("the last turn was cut off");
            components["tool_errors"] = _errors;
            var scored = components.Where(kv => kv.Key != "tool_errors").Select(kv => kv.Value).ToList();
            double reward = _truncated ? 0 : scored.Average();
            // The sandbox broke under the python tool: what the model saw was not its doing, so this is no verdict.
            if (python?.Failure is { } failure)
            {
                components["sandbox_error"] = 1;
                evidence["sandbox_error"] = failure;
                return ValueTask.FromResult(Grade.NotJudged($"the python tool's sandbox failed: {failure}", components, evidence));
            }
            return ValueTask.FromResult(new Grade(reward, components, string.Join("; ", reasons) + (_errors > 0 ? $"; {_errors} tool error(s)" : ""), evidence));
        }

        public ValueTask DisposeAsync() => python?.DisposeAsync() ?? ValueTask.CompletedTask;
    }

    /// <summary>The answer states the expected value: numerically equivalent, or contains the expected text as a word.</summary>
    public static bool AnswerMatches(string answer, string expected)
    {
        var (extracted, _) = MathAnswers.Extract(answer);
        if (extracted != null && MathAnswers.Equivalent(extracted, expected)) return true;
        foreach (System.Text.RegularExpressions.Match token in System.Text.RegularExpressions.Regex.Matches(answer.Length > 2000 ? answer[..2000] : answer, @"-?\d+(?:\.\d+)?|[\p{L}\p{N}]+"))
            if (string.Equals(token.Value, expected, StringComparison.OrdinalIgnoreCase) || MathAnswers.Equivalent(token.Value, expected)) return true;
        return false;
    }
}
