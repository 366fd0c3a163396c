using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.Code;

/// <summary>How one answer is graded.</summary>
/// <param name="Fraction">Reward = share of tests passed (all run); otherwise 1 or 0, stopping at the first failure.</param>
/// <param name="TestTimeout">Wall clock of one test.</param>
/// <param name="GradingTimeout">Wall clock of all tests together; tests not reached count as timeouts.</param>
public sealed record GradingSettings(bool Fraction, TimeSpan TestTimeout, TimeSpan GradingTimeout);

/// <summary>The verdict of one test.</summary>
public enum TestVerdict
{
    /// <summary>Output matched.</summary>
    Pass,
    /// <summary>Ran to the end; output differed.</summary>
    WrongAnswer,
    /// <summary>Ran past its time (or the grading's).</summary>
    Timeout,
    /// <summary>Raised, crashed, ran out of memory or flooded its output.</summary>
    RuntimeError,
    /// <summary>The code does not compile.</summary>
    CompileError,
}

/// <summary>
/// Runs an answer's code against unit tests in a sandbox session: the code is compiled once, then each
/// test is a command with its stdin (stdin/stdout tasks) or a small harness calling the named function
/// with JSON arguments. Grading never throws: bad code, a missing code block, a missing sandbox and a
/// sandbox failure are each a grade with a reason.
/// </summary>
public static partial class CodeGrader
{
    private const string Harness = """
        import json, sys
        sys.setrecursionlimit(100000)
        namespace = {'__name__': 'solution'}
        exec(compile(open('solution.py').read(), 'solution.py', 'exec'), namespace)
        arguments = json.loads(sys.stdin.read())
        sys.stdout.write(json.dumps(namespace[sys.argv[1]](*arguments)))
        """;

    /// <summary>The code of the last fenced block (```python, ```py or a bare ```), or null when there is none.</summary>
    public static string? ExtractCode(string response)
    {
        string? last = null;
        foreach (Match m in FencePattern().Matches(response))
        {
            var language = m.Groups["lang"].Value.Trim().ToLowerInvariant();
            if (language is "" or "python" or "python3" or "py") last = m.Groups["code"].Value;
        }
        return last;
    }

    /// <summary>Grades a response against <c>unit_tests</c>.</summary>
    public static async Task<Grade> GradeAsync(ISandboxService? sandbox, string response, JsonObject verifierMetadata, GradingSettings settings, CancellationToken cancellation)
    {
        var evidence = new Dictionary<string, string>();
        var components = new Dictionary<string, double>();
        var code = ExtractCode(response);
        if (code is null)
        {
            components["code_found"] = 0;
            return new Grade(0, components, "no ```python code block in the answer", evidence);
        }
        components["code_found"] = 1;
        if (sandbox is null)
        {
            // A host without a sandbox cannot judge code: a 0 here would teach the model that its answer was wrong.
            components["sandbox_unavailable"] = 1;
            return Grade.NotJudged("no sandbox is configured on this host, so the code could not be run", components, evidence);
        }
        var tests = (JsonObject)verifierMetadata["unit_tests"]!;
        var inputs = ((JsonArray)tests["inputs"]!).Select(n => n!.GetValue<string>()).ToList();
        var outputs = ((JsonArray)tests["outputs"]!).Select(n => n is JsonValue v && v.TryGetValue(out string? s) ? s : n!.ToJsonString()).ToList();
        var functionName = tests["fn_name"]?.GetValue<string>();

        using var overall = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        overall.CancelAfter(settings.GradingTimeout);
        var limits = SandboxLimits.Default with { WallTime = settings.TestTimeout, CpuTime = settings.TestTimeout };
        await using var session = await sandbox.OpenSessionAsync(new SandboxSessionOptions(Limits: limits), overall.Token);
        var files = new List<SandboxFile> { SandboxFile.Text("solution.py", code) };
        if (functionName is not null) files.Add(SandboxFile.Text("harness.py", Harness));
        var put = await session.PutFilesAsync(files, overall.Token);
        if (!put.Ok) return SandboxFailure(components, evidence, put.Error!);

        var compile = await session.ExecAsync(new SandboxCommand(["python3", "-c", "import sys; compile(open('solution.py').read(), 'solution.py', 'exec')"], Limits: limits), overall.Token);
        if (compile.Outcome == SandboxOutcome.SandboxError) return SandboxFailure(components, evidence, compile.Detail!);
        if (!compile.Succeeded)
        {
            components["compiled"] = 0;
            components["tests_passed"] = 0;
            evidence["verdict_0"] = "compile_error";
            evidence["stderr"] = SandboxText.TrimForModel(compile.Stderr.Text, 2000);
            return new Grade(0, components, $"the code does not compile: {LastLine(compile.Stderr.Text)}", evidence);
        }
        components["compiled"] = 1;

        var passed = 0;
        var run = 0;
        string? firstFailure = null;
        for (var i = 0; i < inputs.Count; i++)
        {
            TestVerdict verdict;
            if (overall.IsCancellationRequested)
            {
                verdict = TestVerdict.Timeout;
                evidence[$"verdict_{i}"] = "timeout";
                evidence[$"detail_{i}"] = "not run: the grading's wall clock ran out";
            }
            else
            {
                var command = functionName is null
                    ? new SandboxCommand(["python3", "solution.py"], Encoding.UTF8.GetBytes(inputs[i]), limits)
                    : new SandboxCommand(["python3", "harness.py", functionName], Encoding.UTF8.GetBytes(inputs[i]), limits);
                var result = await session.ExecAsync(command, overall.Token);
                if (result.Outcome == SandboxOutcome.SandboxError) return SandboxFailure(components, evidence, result.Detail!);
                run++;
                (verdict, var detail) = Judge(result, outputs[i], functionName is not null, overall.IsCancellationRequested);
                evidence[$"verdict_{i}"] = VerdictName(verdict);
                if (detail is not null) evidence[$"detail_{i}"] = detail;
                if (verdict is TestVerdict.RuntimeError or TestVerdict.Timeout && result.Stderr.Bytes.Length > 0)
                    evidence[$"stderr_{i}"] = SandboxText.TrimForModel(result.Stderr.Text, 2000);
            }
            if (verdict == TestVerdict.Pass) passed++;
            else
            {
                firstFailure ??= $"test {i + 1}: {VerdictName(verdict).Replace('_', ' ')}" + (evidence.TryGetValue($"detail_{i}", out var d) ? $" ({d})" : "");
                if (!settings.Fraction) break;
            }
        }
        components["tests_passed"] = (double)passed / inputs.Count;
        evidence["tests"] = $"{passed}/{inputs.Count} passed, {run} run";
        var reward = settings.Fraction ? (double)passed / inputs.Count : passed == inputs.Count ? 1 : 0;
        var reason = passed == inputs.Count ? $"all {inputs.Count} tests pass" : $"{passed}/{inputs.Count} tests pass; first failure: {firstFailure}";
        return new Grade(reward, components, reason, evidence);
    }

    private static Grade SandboxFailure(Dictionary<string, double> components, Dictionary<string, string> evidence, string detail)
    {
        // Not a verdict on the code: the host retries the episode, then the trainer masks it; it never learns from a 0.
        components["sandbox_error"] = 1;
        evidence["sandbox_error"] = detail;
        return Grade.NotJudged($"the sandbox failed: {detail}", components, evidence);
    }

    private static (TestVerdict Verdict, string? Detail) Judge(SandboxResult result, string expected, bool json, bool graderOutOfTime)
    {
        switch (result.Outcome)
        {
            case SandboxOutcome.Timeout: return (TestVerdict.Timeout, result.Detail);
            case SandboxOutcome.Killed: return (TestVerdict.Timeout, graderOutOfTime ? "the grading's wall clock ran out" : result.Detail);
            case SandboxOutcome.MemoryLimit or SandboxOutcome.OutputLimit: return (TestVerdict.RuntimeError, result.Detail);
        }
        if (result.ExitCode != 0)
            return (TestVerdict.RuntimeError, result.Signal is { } signal ? $"killed by signal {signal}" : $"exit code {result.ExitCode}: {LastLine(result.Stderr.Text)}");
        var actual = result.Stdout.Text;
        var difference = json ? CompareJson(actual, expected) : CompareText(actual, expected);
        return difference is null ? (TestVerdict.Pass, null) : (TestVerdict.WrongAnswer, difference);
    }

    /// <summary>
    /// Null when the outputs agree line by line, ignoring trailing whitespace and trailing blank lines,
    /// and numbers agree within 1e-6 (relative) or 1e-9 (absolute); otherwise the first differing line.
    /// </summary>
    public static string? CompareText(string actual, string expected)
    {
        var a = SplitLines(actual);
        var e = SplitLines(expected);
        for (var i = 0; i < Math.Max(a.Count, e.Count); i++)
        {
            var got = i < a.Count ? a[i] : null;
            var want = i < e.Count ? e[i] : null;
            if (got is null || want is null || !LineEquals(got, want))
                return $"line {i + 1}: expected '{Short(want ?? "(no line)")}', got '{Short(got ?? "(no line)")}'";
        }
        return null;
    }

    private static List<string> SplitLines(string text)
    {
        var lines = text.Replace("\r\n", "\n").Split('\n').Select(l => l.TrimEnd()).ToList();
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return lines;
    }

    private static bool LineEquals(string got, string want)
    {
        if (got == want) return true;
        var g = got.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        var w = want.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (g.Length != w.Length) return false;
        for (var i = 0; i < g.Length; i++)
        {
            if (g[i] == w[i]) continue;
            if (!NumbersEqual(g[i], w[i])) return false;
        }
        return true;
    }

    private static bool NumbersEqual(string got, string want) =>
        double.TryParse(got, NumberStyles.Float, CultureInfo.InvariantCulture, out var x)
        && double.TryParse(want, NumberStyles.Float, CultureInfo.InvariantCulture, out var y)
        && !double.IsNaN(x) && !double.IsNaN(y)
        && Math.Abs(x - y) <= Math.Max(1e-9, 1e-6 * Math.Max(Math.Abs(x), Math.Abs(y)));

    private static string? CompareJson(string actual, string expected)
    {
        JsonNode? got, want;
        try { got = JsonNode.Parse(actual); }
        catch (JsonException) { return $"the function's result is not JSON-serializable output: '{Short(actual)}'"; }
        want = JsonNode.Parse(expected);
        return JsonEquals(got, want) ? null : $"expected {Short(expected)}, got {Short(actual)}";
    }

    private static bool JsonEquals(JsonNode? a, JsonNode? b)
    {
        switch (a, b)
        {
            case (null, null): return true;
            case (JsonArray x, JsonArray y): return x.Count == y.Count && x.Zip(y).All(p => JsonEquals(p.First, p.Second));
            case (JsonObject x, JsonObject y): return x.Count == y.Count && x.All(p => y.TryGetPropertyValue(p.Key, out var v) && JsonEquals(p.Value, v));
            case (JsonValue x, JsonValue y):
                if (x.GetValueKind() == JsonValueKind.Number && y.GetValueKind() == JsonValueKind.Number)
                    return NumbersEqual(x.ToJsonString(), y.ToJsonString());
                return x.ToJsonString() == y.ToJsonString();
            default: return false;
        }
    }

    /// <summary>The name a verdict has in evidence ("wrong_answer").</summary>
    public static string VerdictName(TestVerdict verdict) => verdict switch
    {
        TestVerdict.Pass => "pass",
        TestVerdict.WrongAnswer => "wrong_answer",
        TestVerdict.Timeout => "timeout",
        TestVerdict.RuntimeError => "runtime_error",
        _ => "compile_error",
    };

    private static string Short(string text) => text.Length <= 120 ? text : text[..120] + "...";

    private static string LastLine(string text) => Short(text.TrimEnd().Split('\n')[^1].Trim());

    [GeneratedRegex(@"```(?<lang>[^\n`]*)\n(?<code>.*?)```", RegexOptions.Singleline)]
    private static partial Regex FencePattern();
}
