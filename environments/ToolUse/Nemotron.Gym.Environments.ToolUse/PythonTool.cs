using System.Text;
using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.ToolUse;

/// <summary>
/// The <c>python</c> tool of one episode: a sandbox session of its own, opened at the first call and disposed with
/// the episode. The session's scratch folder keeps files between calls, but no process outlives a call, so the
/// interpreter's state is carried over by a small harness: after each call it keeps the values that can be pickled,
/// and the imports, functions and classes the call defined; the next call starts from them. A value that cannot be
/// pickled (an open file, a generator) is gone after its call, as the tool's description says.
/// </summary>
public sealed class PythonTool(ISandboxService? sandbox) : IAsyncDisposable
{
    /// <summary>The tool as the model sees it.</summary>
    public static readonly ToolDefinition Definition = new("python",
        "Run Python 3 code in a sandbox (no network, 10 s per call). Variables, imports, functions and files persist between calls of this conversation; the value of a last bare expression is printed. Returns the exit status, stdout and stderr.",
        new JsonObject
        {
            ["type"] = "object",
            ["properties"] = new JsonObject { ["code"] = new JsonObject { ["type"] = "string" } },
            ["required"] = new JsonArray("code"),
        });

    /// <summary>Limits of one call.</summary>
    public static SandboxLimits Limits { get; } = SandboxLimits.Default with { WallTime = TimeSpan.FromSeconds(10), CpuTime = TimeSpan.FromSeconds(10) };

    /// <summary>Characters of each stream shown to the model (head and tail kept).</summary>
    public const int ShownChars = 4000;

    private ISandboxSession? _session;

    /// <summary>Set when the sandbox itself failed: the episode's course was not the model's doing, so it must not be graded.</summary>
    public string? Failure { get; private set; }

    /// <summary>Calls made.</summary>
    public int Calls { get; private set; }

    /// <summary>Runs one call; returns the tool's answer text and whether it was an error. Never throws for what the model sent.</summary>
    public async ValueTask<(string Result, bool Error)> ExecuteAsync(ToolCall call, CancellationToken cancellation)
    {
        if (call.Arguments["code"] is not JsonValue value || !value.TryGetValue(out string? code))
            return ("error: python needs a string argument 'code'", true);
        if (sandbox is null)
        {
            Failure = "no sandbox is configured on this host";
            return ("error: the python tool is not available here (no sandbox)", true);
        }
        if (Failure is not null) return ($"error: the sandbox failed earlier in this conversation ({Failure})", true);
        Calls++;
        _session ??= await sandbox.OpenSessionAsync(new SandboxSessionOptions(Limits: Limits), cancellation);
        // The harness goes in before every call: the model's code may have overwritten it.
        var put = await _session.PutFilesAsync([SandboxFile.Text(HarnessFile, Harness)], cancellation);
        if (!put.Ok) return SandboxFailed(put.Error ?? "could not write the harness");
        var result = await _session.ExecAsync(new SandboxCommand(["python3", HarnessFile], Encoding.UTF8.GetBytes(code), Limits), cancellation);
        return result.Outcome switch
        {
            SandboxOutcome.SandboxError => SandboxFailed(result.Detail ?? "unknown"),
            SandboxOutcome.Timeout => (Show($"error: timed out after {Limits.WallTime.TotalSeconds:0} s; what this call changed is lost", result), true),
            SandboxOutcome.MemoryLimit => (Show($"error: out of memory ({Limits.MemoryBytes >> 20} MiB); what this call changed is lost", result), true),
            SandboxOutcome.OutputLimit => (Show("error: too much output; it was cut", result), true),
            SandboxOutcome.Killed => (Show($"error: killed ({result.Detail})", result), true),
            _ => (Show($"exit status {result.ExitCode ?? -1}", result), result.ExitCode != 0),
        };
    }

    private (string, bool) SandboxFailed(string detail)
    {
        Failure = detail;
        return ($"error: the sandbox failed ({detail})", true);
    }

    private static string Show(string status, SandboxResult result)
    {
        var text = new StringBuilder(status);
        if (result.Stdout.Bytes.Length > 0) text.Append("\nstdout:\n").Append(SandboxText.TrimForModel(result.Stdout.Text, ShownChars));
        if (result.Stderr.Bytes.Length > 0) text.Append("\nstderr:\n").Append(SandboxText.TrimForModel(result.Stderr.Text, ShownChars));
        return text.ToString();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        var session = Interlocked.Exchange(ref _session, null);
        if (session is not null) await session.DisposeAsync();
    }

    private const string HarnessFile = ".gym_python.py";

    // Runs the call's code (read from stdin) in a fresh __main__ module that first gets the definitions and the
    // picklable values earlier calls left, then keeps this call's for the next one. Definitions are kept as source and
    // run one by one (a failing import does not take the rest with it).
    private const string Harness = """
        import ast, json, os, pickle, sys, traceback, types

        DEFS, VALUES = '.gym_python_defs.json', '.gym_python_values.pkl'
        source = sys.stdin.read()
        main = types.ModuleType('__main__')
        sys.modules['__main__'] = main
        env = main.__dict__
        definitions = []
        if os.path.exists(DEFS):
            try:
                with open(DEFS) as f: definitions = json.load(f)
            except Exception: definitions = []
        for d in definitions:
            try: exec(compile(d, '<earlier call>', 'exec'), env)
            except Exception: pass
        if os.path.exists(VALUES):
            try:
                with open(VALUES, 'rb') as f: env.update(pickle.load(f))
            except Exception: pass
        try:
            tree = ast.parse(source, '<python>')
        except SyntaxError:
            traceback.print_exc(limit=0)
            sys.exit(1)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        status = 0
        try:
            exec(compile(tree, '<python>', 'exec'), env)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), '<python>', 'eval'), env)
                if value is not None: print(repr(value))
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            etype, evalue, tb = sys.exc_info()
            traceback.print_exception(etype, evalue, tb.tb_next)
            status = 1
        kinds = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        definitions += [ast.unparse(n) for n in tree.body if isinstance(n, kinds)]
        with open(DEFS, 'w') as f: json.dump(definitions, f)
        values = {}
        for k, v in list(env.items()):
            if k.startswith('__') or isinstance(v, (types.ModuleType, types.FunctionType, type)): continue
            try:
                pickle.dumps(v)
                values[k] = v
            except Exception: pass
        with open(VALUES, 'wb') as f: pickle.dump(values, f)
        sys.stdout.flush()
        sys.exit(status)
        """;
}
