using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Sandbox;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Environments.Code.Tests;

/// <summary>The bwrap sandbox as a host offers it to the environment (the image is built when missing).</summary>
public sealed class SandboxHost : IAsyncLifetime, IEnvironmentServices, IEnvironmentLog
{
    public BwrapSandboxService Sandbox { get; private set; } = null!;
    public List<string> Log { get; } = [];

    public async ValueTask InitializeAsync()
    {
        var settings = new SandboxSettings { SiloName = "code-tests", FirstUid = 64000, Slots = 4, ScratchDirectory = "/run/nemotron-gym-sandbox-code-tests" };
        await SandboxImage.EnsureAsync(Path.Combine(RepoPaths.Root, "sandbox-images"), settings.ImagesDirectory, "python", default);
        var (sandbox, error) = BwrapSandboxService.Create(settings);
        Sandbox = sandbox ?? throw new InvalidOperationException(error);
    }

    public T? Get<T>() where T : class => typeof(T) == typeof(ISandboxService) ? (T)(object)Sandbox : null;

    public void Write(string message) { lock (Log) Log.Add(message); }

    public ValueTask DisposeAsync()
    {
        Sandbox?.Dispose();
        return ValueTask.CompletedTask;
    }
}

public sealed class CodeEnvironmentTests(SandboxHost host) : IClassFixture<SandboxHost>
{
    private sealed class NoServices : IEnvironmentServices { public T? Get<T>() where T : class => null; }

    private async Task<CodeEnvironment> Start(IEnvironmentServices? services = null, Dictionary<string, string>? settings = null)
    {
        var env = new CodeEnvironment();
        var values = env.Descriptor.Options.ToDictionary(o => o.Name, o => o.Default);
        // Time to spare for a program that does not mean to run long: on a CI machine busy with the other test
        // projects, Python took 1.2 s to start and filled fresh memory at about 130 MB/s.
        values["test_timeout_s"] = "10";
        foreach (var (k, v) in settings ?? []) values[k] = v;
        await env.InitializeAsync(new EnvironmentContext(values, Path.Combine(AppContext.BaseDirectory, "data"), services ?? host, host), default);
        return env;
    }

    private static async Task<Grade> Play(IEnvironment env, TaskRecord task, string response)
    {
        await using var episode = await env.OpenEpisodeAsync(task, new EpisodeContext(1, 0), default);
        await episode.StepAsync(AssistantTurn.FromContent(response), default);
        return await episode.GradeAsync(default);
    }

    private static TaskRecord StdinTask(params (string Input, string Output)[] tests) => new()
    {
        Id = "t",
        Input = [Message.User("echo")],
        VerifierMetadata = new JsonObject
        {
            ["unit_tests"] = new JsonObject
            {
                ["inputs"] = new JsonArray(tests.Select(t => (JsonNode)JsonValue.Create(t.Input)).ToArray()),
                ["outputs"] = new JsonArray(tests.Select(t => (JsonNode)JsonValue.Create(t.Output)).ToArray()),
            },
        },
    };

    [Fact]
    public async Task There_are_at_least_300_valid_distinct_tasks_loaded_the_same_way_twice()
    {
        var env = await Start();
        var train = await env.LoadTasksAsync(new TaskQuery("train", 0, 7), default);
        var heldout = await env.LoadTasksAsync(new TaskQuery("heldout", 100, 7), default);
        Assert.True(train.Count >= 300, $"{train.Count} train tasks");
        Assert.Equal(train.Count, train.Select(t => t.Id).Distinct().Count());
        foreach (var task in train.Concat(heldout))
        {
            Assert.Empty(env.ValidateTask(task));
            Assert.Single(task.Reference);
            Assert.NotNull(task.Extra["wrong_reference"]);
        }
        Assert.Contains(train, t => t.VerifierMetadata["unit_tests"]!["fn_name"] is not null);
        Assert.Empty(train.Select(t => t.Input[0].Content).Intersect(heldout.Select(t => t.Input[0].Content)));
        var again = await env.LoadTasksAsync(new TaskQuery("train", 0, 7), default);
        Assert.Equal(train.Select(t => t.ToJsonLine()), again.Select(t => t.ToJsonLine()));
        foreach (var family in CodeProblems.Families) Assert.Contains(train, t => t.VerifierMetadata["family"]?.GetValue<string>() == family);
    }

    [Fact]
    public async Task References_pass_and_wrong_solutions_fail()
    {
        var env = await Start();
        var tasks = (await env.LoadTasksAsync(new TaskQuery("train", 0, 3), default))
            .Concat(await env.LoadTasksAsync(new TaskQuery("heldout", 12, 3), default)).ToList();
        // Every hand-written task, and two generated tasks of every family.
        var chosen = tasks.Where(t => t.Id.StartsWith("code-hand", StringComparison.Ordinal))
            .Concat(tasks.Where(t => t.VerifierMetadata["family"] is not null).GroupBy(t => t.VerifierMetadata["family"]!.GetValue<string>()).SelectMany(g => g.Take(2)))
            .ToList();
        Assert.True(chosen.Count >= 30, $"{chosen.Count} tasks");
        var failures = new List<string>();
        await Parallel.ForEachAsync(chosen, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (task, _) =>
        {
            var reference = await Play(env, task, task.Reference[0].Content);
            if (reference.Reward != 1) lock (failures) failures.Add($"{task.Id}: reference graded {reference.Reward}: {reference.Reason}");
            var wrong = await Play(env, task, task.Extra["wrong_reference"]!.GetValue<string>());
            if (wrong.Reward >= 1) lock (failures) failures.Add($"{task.Id}: wrong solution graded {wrong.Reward}: {wrong.Reason}");
        });
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Theory]
    [InlineData("print(input()[::-1])", 1.0, "pass", "all 2 tests pass")]
    [InlineData("print(input())", 0.0, "wrong_answer", "line 1: expected 'cba', got 'abc'")]
    [InlineData("print(input(", 0.0, "compile_error", "does not compile")]
    [InlineData("raise ValueError('boom')", 0.0, "runtime_error", "ValueError: boom")]
    [InlineData("while True: pass", 0.0, "timeout", "timeout")]
    [InlineData("x = b'x' * (1 << 34)", 0.0, "runtime_error", "memory")]
    public async Task Each_verdict_comes_from_a_program_made_to_produce_it(string program, double reward, string verdict, string reasonPart)
    {
        // Only the timeout case runs into the clock. Under a 2 s limit on a busy CI machine, the 16 GiB allocation was
        // still filling its 256 MiB when the clock ended it, and was graded a timeout (twice).
        var env = await Start(settings: verdict == "timeout" ? new() { ["test_timeout_s"] = "2" } : null);
        var task = StdinTask(("abc\n", "cba"), ("xy\n", "yx"));
        var grade = await Play(env, task, $"Here it is:\n```python\n{program}\n```\n");
        Assert.Equal(reward, grade.Reward);
        Assert.Equal(verdict, grade.Evidence["verdict_0"]);
        Assert.Contains(reasonPart, grade.Reason + " " + string.Join(" ", grade.Evidence.Values));
    }

    [Fact]
    public async Task Fraction_mode_runs_every_test_and_binary_stops_at_the_first_failure()
    {
        var task = StdinTask(("1\n", "1"), ("2\n", "4"), ("3\n", "9"), ("4\n", "16"));
        const string squaresButThree = "```python\nn = int(input())\nprint(n * n if n != 3 else 0)\n```";
        var fraction = await Play(await Start(settings: new() { ["reward_mode"] = "fraction" }), task, squaresButThree);
        Assert.Equal(0.75, fraction.Reward, 6);
        Assert.Equal("pass", fraction.Evidence["verdict_3"]);
        var binary = await Play(await Start(), task, squaresButThree);
        Assert.Equal(0, binary.Reward);
        Assert.False(binary.Evidence.ContainsKey("verdict_3"));
        Assert.Equal("3/4 tests pass; first failure: test 3: wrong answer (line 1: expected '9', got '0')", fraction.Reason);
    }

    [Fact]
    public async Task Numbers_and_trailing_whitespace_compare_tolerantly()
    {
        Assert.Null(CodeGrader.CompareText("3.0000001  \n\n\n", "3"));
        Assert.Null(CodeGrader.CompareText("1 2 3\n", "1 2 3"));
        Assert.Null(CodeGrader.CompareText("1e3\n", "1000"));
        Assert.NotNull(CodeGrader.CompareText("3.01\n", "3"));
        Assert.NotNull(CodeGrader.CompareText("1 2\n", "1 2 3"));
        Assert.NotNull(CodeGrader.CompareText("", "0"));
        Assert.NotNull(CodeGrader.CompareText("nan", "nan ok"));
        var env = await Start();
        var grade = await Play(env, StdinTask(("", "0.3333333")), "```python\nprint(1/3, '   ')\n```");
        Assert.Equal(1, grade.Reward);
    }

    [Theory]
    [InlineData("", "no ```python code block")]
    [InlineData("The answer is print(1)", "no ```python code block")]
    [InlineData("```javascript\nconsole.log(1)\n```", "no ```python code block")]
    public async Task No_code_block_is_a_clear_zero(string response, string reason)
    {
        var grade = await Play(await Start(), StdinTask(("", "1")), response);
        Assert.Equal(0, grade.Reward);
        Assert.Contains(reason, grade.Reason);
    }

    [Fact]
    public async Task The_last_code_block_is_the_answer()
    {
        var grade = await Play(await Start(), StdinTask(("", "2")), "First try:\n```python\nprint(1)\n```\nFixed:\n```py\nprint(2)\n```");
        Assert.Equal(1, grade.Reward);
    }

    [Fact]
    public async Task Without_a_sandbox_grading_says_so_and_does_not_throw()
    {
        var env = await Start(new NoServices());
        var grade = await Play(env, StdinTask(("", "1")), "```python\nprint(1)\n```");
        Assert.True(grade.Masked, "no sandbox is no verdict: the grade must be masked, not a 0");
        Assert.Contains("no sandbox", grade.MaskReason);
        Assert.Equal(1, grade.Components["sandbox_unavailable"]);
        Assert.Contains(host.Log, l => l.Contains("no sandbox"));
    }

    [Theory]
    [InlineData("```python\nimport sys\nsys.stdout.buffer.write(bytes(range(256)) * 100)\n```")]
    [InlineData("```python\nwhile True: print('y' * 10000)\n```")]
    [InlineData("```python\nimport os\nos.kill(os.getpid(), 9)\n```")]
    [InlineData("```python\nimport sys\nsys.exit('\\udcff')\n```")]
    [InlineData("```python\n\0\0\0\n```")]
    [InlineData("```python\nimport json\ndef f(*a): return {1, 2}\n```")]
    public async Task Grading_never_throws_on_hostile_answers(string response)
    {
        var env = await Start();
        var stdin = await Play(env, StdinTask(("x\n", "x")), response);
        Assert.Equal(0, stdin.Reward);
        var function = new TaskRecord
        {
            Id = "f",
            Input = [Message.User("f")],
            VerifierMetadata = new JsonObject { ["unit_tests"] = new JsonObject { ["inputs"] = new JsonArray("[1]"), ["outputs"] = new JsonArray("1"), ["fn_name"] = "f" } },
        };
        Assert.Empty(env.ValidateTask(function));
        var called = await Play(env, function, response);
        Assert.Equal(0, called.Reward);
        Assert.False(string.IsNullOrWhiteSpace(called.Reason));
    }

    [Fact]
    public async Task Invalid_task_metadata_is_reported_with_the_field()
    {
        var env = await Start();
        var bad = new TaskRecord
        {
            Id = "bad",
            Input = [Message.User("q")],
            VerifierMetadata = new JsonObject { ["unit_tests"] = new JsonObject { ["inputs"] = new JsonArray("1"), ["outputs"] = new JsonArray(), ["fn_name"] = "not a name" } },
        };
        Assert.Contains(env.ValidateTask(bad), p => p.Contains("unit_tests.outputs"));
    }
}
