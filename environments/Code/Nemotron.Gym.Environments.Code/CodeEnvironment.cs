using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.Code;

/// <summary>
/// Python programming tasks graded by running the answer in the host's sandbox against hidden unit
/// tests, in the NeMo-Gym / LiveCodeBench shape: <c>verifier_metadata.unit_tests {inputs[], outputs[],
/// fn_name?}</c>, either stdin/stdout programs or calls of a named function (inputs are JSON argument
/// lists, outputs JSON values). The answer's code is the last fenced code block. Evidence per test:
/// its verdict (pass, wrong_answer, timeout, runtime_error, compile_error), the first differing line,
/// and the trimmed stderr. A sandbox failure (or no sandbox at all) is reported as such: a grade that is
/// no verdict (<see cref="Grade.MaskReason"/>, component <c>sandbox_error</c>), never a wrong answer.
/// </summary>
public sealed partial class CodeEnvironment : EnvironmentBase
{
    private ISandboxService? sandbox;

    /// <inheritdoc />
    public override EnvironmentDescriptor Descriptor { get; } = new(
        "code", "1.0.0",
        "Write a Python program or function; graded by running hidden unit tests in a sandbox.",
        [
            new ConfigOption("reward_mode", ConfigType.Choice, "binary", "binary: 1 when every test passes (stops at the first failure); fraction: the share of tests passed (runs them all).", Choices: ["binary", "fraction"]),
            new ConfigOption("difficulty", ConfigType.Integer, "1", "Input sizes of procedural problems: 1 (small) to 3 (large).", 1, 3),
            new ConfigOption("families", ConfigType.Text, string.Join(",", CodeProblems.Families), "Comma-separated procedural families to draw from."),
            new ConfigOption("test_timeout_s", ConfigType.Number, "5", "Wall-clock limit of one test.", 0.1, 120),
            new ConfigOption("grading_timeout_s", ConfigType.Number, "60", "Wall-clock limit of grading one answer (all its tests).", 1, 3600),
            new ConfigOption("handwritten", ConfigType.Boolean, "true", "Include the hand-written tasks of data/handwritten.jsonl."),
        ],
        ["train", "heldout"]);

    /// <inheritdoc />
    public override async ValueTask InitializeAsync(EnvironmentContext context, CancellationToken cancellation)
    {
        await base.InitializeAsync(context, cancellation);
        sandbox = Context.Services.Get<ISandboxService>();
        if (sandbox is null) Context.Log.Write("code: no sandbox service is configured; no answer can be judged (each grade comes back not judged, and the trainer masks it)");
    }

    /// <inheritdoc />
    public override async ValueTask<IReadOnlyList<TaskRecord>> LoadTasksAsync(TaskQuery query, CancellationToken cancellation)
    {
        if (query.Split is not ("train" or "heldout")) throw new ArgumentException($"code: unknown split '{query.Split}' (train, heldout)");
        var families = Context.GetText("families").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var f in families)
            if (!CodeProblems.Families.Contains(f)) throw new ArgumentException($"code: setting 'families': unknown family '{f}' (expected {string.Join(", ", CodeProblems.Families)})");
        var difficulty = Context.GetInt("difficulty");
        var tasks = new List<TaskRecord>();
        if (Context.GetBool("handwritten"))
            foreach (var t in await ReadJsonlAsync(Path.Combine(Context.DataDirectory, "handwritten.jsonl"), cancellation))
                if ((t.Extra["split"]?.GetValue<string>() ?? "train") == query.Split) tasks.Add(t);
        var target = query.Count > 0 ? query.Count : 300;
        // One stream for both splits; a problem belongs to the held-out split when the hash of its prompt
        // says so (one in five), so the same prompt can never be in both.
        var heldOut = query.Split == "heldout";
        var rng = new Random(query.Seed);
        var seen = new HashSet<string>(tasks.Select(t => t.Input[^1].Content));
        var generated = 0;
        for (var i = 0; tasks.Count < target && i < target * 50; i++)
        {
            var problem = CodeProblems.Generate(families[i % families.Length], difficulty, rng);
            var task = ToTask($"code-{query.Split}-{generated:D5}", problem);
            if (IsHeldOut(task.Input[^1].Content) != heldOut || !seen.Add(task.Input[^1].Content)) continue;
            tasks.Add(task);
            generated++;
        }
        return tasks.Take(target).ToList();
    }

    // FNV-1a over the prompt: stable across runs and machines, unlike string.GetHashCode.
    private static bool IsHeldOut(string prompt)
    {
        var hash = 2166136261u;
        foreach (var c in prompt) hash = (hash ^ c) * 16777619u;
        return hash % 5 == 0;
    }

    /// <summary>A generated problem as a task record (the wrong solution kept in <c>wrong_reference</c> for checks).</summary>
    public static TaskRecord ToTask(string id, CodeProblem problem)
    {
        var prompt = $"{problem.Statement}\n\nExample input:\n```\n{problem.ExampleInput.TrimEnd('\n')}\n```\nExample output:\n```\n{problem.ExampleOutput}\n```\n\n" +
                     "Write a Python 3 program that reads standard input and writes standard output. Put the whole program in one ```python code block.";
        return new TaskRecord
        {
            Id = id,
            Input = [Message.User(prompt)],
            VerifierMetadata = new JsonObject
            {
                ["unit_tests"] = new JsonObject
                {
                    ["inputs"] = new JsonArray(problem.Inputs.Select(i => (JsonNode)JsonValue.Create(i)).ToArray()),
                    ["outputs"] = new JsonArray(problem.Outputs.Select(o => (JsonNode)JsonValue.Create(o)).ToArray()),
                },
                ["family"] = problem.Family,
            },
            Reference = [AssistantTurn.FromContent($"```python\n{problem.Reference}```")],
            Extra = new JsonObject { ["wrong_reference"] = $"```python\n{problem.Wrong}```" },
        };
    }

    /// <inheritdoc />
    public override IReadOnlyList<string> ValidateTask(TaskRecord task)
    {
        var problems = new List<string>();
        if (task.VerifierMetadata["unit_tests"] is not JsonObject tests) return ["verifier_metadata.unit_tests must be an object"];
        if (tests["inputs"] is not JsonArray inputs || inputs.Count == 0) problems.Add("verifier_metadata.unit_tests.inputs must be a non-empty list");
        else if (tests["outputs"] is not JsonArray outputs || outputs.Count != inputs.Count) problems.Add("verifier_metadata.unit_tests.outputs must be a list as long as inputs");
        else if (tests["fn_name"] is { } fn && (fn is not JsonValue v || !v.TryGetValue(out string? name) || !IdentifierPattern().IsMatch(name)))
            problems.Add("verifier_metadata.unit_tests.fn_name must be a Python identifier");
        else if (tests["fn_name"] is not null)
        {
            for (var i = 0; i < inputs.Count; i++)
                if (inputs[i] is not JsonValue s || !s.TryGetValue(out string? text) || JsonNode.Parse(text) is not JsonArray)
                    problems.Add($"verifier_metadata.unit_tests.inputs[{i}] must be a JSON list of arguments (as text) for fn_name tasks");
        }
        if (task.Input.Count == 0 || task.Input[^1].Role != Role.User) problems.Add("the last input message must be the user's question");
        return problems;
    }

    /// <inheritdoc />
    public override ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation) =>
        ValueTask.FromResult<IEpisode>(new CodeEpisode(this, task));

    private sealed class CodeEpisode(CodeEnvironment env, TaskRecord task) : IEpisode
    {
        private AssistantTurn? answer;

        public IReadOnlyList<Message> Opening => task.Input;
        public IReadOnlyList<ToolDefinition> Tools => task.Tools;

        public ValueTask<StepResult> StepAsync(AssistantTurn turn, CancellationToken cancellation)
        {
            answer = turn;
            return ValueTask.FromResult(StepResult.End);
        }

        public async ValueTask<Grade> GradeAsync(CancellationToken cancellation)
        {
            if (answer is null) return Grade.Of(0, "no answer was given");
            if (answer.Truncated) return new Grade(0, new Dictionary<string, double> { ["truncated"] = 1 }, "the answer was cut off at the length limit", new Dictionary<string, string>());
            var settings = new GradingSettings(env.Context.GetText("reward_mode") == "fraction", TimeSpan.FromSeconds(env.Context.GetDouble("test_timeout_s")),
                TimeSpan.FromSeconds(env.Context.GetDouble("grading_timeout_s")));
            return await CodeGrader.GradeAsync(env.sandbox, answer.Content, task.VerifierMetadata, settings, cancellation);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex IdentifierPattern();
}
