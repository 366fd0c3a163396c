using System.Diagnostics;
using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.Hostile;

/// <summary>
/// Each task names, in verifier_metadata.attack, what its grader does to the process it runs in: "none" (an honest
/// grader: reward 1 when the answer is "ok"), "exit" (Environment.Exit(0)), "kill" (Process.Kill on itself),
/// "stack_overflow" (unbounded recursion), "hang" (spins and ignores its cancellation token), "shadow" (reads
/// /etc/shadow and reports what it got), "nan" (reward NaN), "infinite_component" (a component of +∞),
/// "throw" (an exception), "step_exit" (exits while taking the turn instead of grading it), "network" (connects to
/// the loopback port of the setting "port": reward 1 when it can), "sandbox" (not an attack: uses the host's
/// sandbox service, a one-shot run and a session, and gets reward 1 when both print 42).
/// A file named exit-on-load in the plugin folder makes the constructor end the process.
/// </summary>
public sealed class HostileEnvironment : EnvironmentBase
{
    public static readonly string[] Attacks = ["none", "exit", "kill", "stack_overflow", "hang", "shadow", "nan", "infinite_component", "throw", "step_exit", "network", "sandbox"];

    public HostileEnvironment()
    {
        var folder = Path.GetDirectoryName(typeof(HostileEnvironment).Assembly.Location)!;
        if (File.Exists(Path.Combine(folder, "exit-on-load"))) Environment.Exit(0);
    }

    public override EnvironmentDescriptor Descriptor { get; } = new("hostile", "1.0.0", "Graders that attack the process they run in (tests only).",
        [new ConfigOption("port", ConfigType.Integer, "1", "The loopback port the network attack connects to", 1, 65535)], ["train"]);

    public override ValueTask<IReadOnlyList<TaskRecord>> LoadTasksAsync(TaskQuery query, CancellationToken cancellation)
    {
        // Each attack once, then honest tasks up to the count asked for.
        int count = Math.Max(query.Count, Attacks.Length);
        var tasks = new List<TaskRecord>();
        for (int i = 0; i < count; i++)
        {
            string attack = i < Attacks.Length ? Attacks[i] : "none";
            tasks.Add(new TaskRecord
            {
                Id = i < Attacks.Length ? attack : $"none-{i}",
                Input = [Message.User("Say ok.")],
                VerifierMetadata = new JsonObject { ["attack"] = attack },
                Reference = [AssistantTurn.FromContent("ok")],
            });
        }
        return ValueTask.FromResult<IReadOnlyList<TaskRecord>>(tasks);
    }

    public override IReadOnlyList<string> ValidateTask(TaskRecord task) =>
        Attacks.Contains(task.VerifierMetadata["attack"]?.GetValue<string>()) ? [] : ["unknown attack"];

    public override ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation) =>
        ValueTask.FromResult<IEpisode>(new HostileEpisode(task, task.VerifierMetadata["attack"]!.GetValue<string>(), Context.GetInt("port"), Context.Services));

    private sealed class HostileEpisode(TaskRecord task, string attack, int port, IEnvironmentServices services) : IEpisode
    {
        private AssistantTurn? _answer;

        public IReadOnlyList<Message> Opening => task.Input;
        public IReadOnlyList<ToolDefinition> Tools => [];

        public ValueTask<StepResult> StepAsync(AssistantTurn turn, CancellationToken cancellation)
        {
            if (attack == "step_exit") Environment.Exit(0);
            _answer = turn;
            return ValueTask.FromResult(StepResult.End);
        }

        public async ValueTask<Grade> GradeAsync(CancellationToken cancellation)
        {
            switch (attack)
            {
                case "exit": Environment.Exit(0); break;
                case "kill": Process.GetCurrentProcess().Kill(); break;
                case "stack_overflow": return Grade.Of(Recurse(1), "unreachable");
                case "hang":
                    var clock = Stopwatch.StartNew();
                    while (clock.Elapsed < TimeSpan.FromHours(1)) { } // ignores its token on purpose
                    break;
                case "shadow":
                    try
                    {
                        string text = await File.ReadAllTextAsync("/etc/shadow", cancellation);
                        return new Grade(1, new Dictionary<string, double>(), "read /etc/shadow", new Dictionary<string, string> { ["shadow"] = text });
                    }
                    catch (Exception e) { return new Grade(0, new Dictionary<string, double>(), $"could not read /etc/shadow: {e.GetType().Name}", new Dictionary<string, string>()); }
                case "network":
                    try
                    {
                        using var client = new System.Net.Sockets.TcpClient();
                        await client.ConnectAsync(System.Net.IPAddress.Loopback, port, cancellation);
                        return Grade.Of(1, "connected");
                    }
                    catch (Exception e) { return Grade.Of(0, $"no connection: {e.GetType().Name}"); }
                case "sandbox":
                    var sandbox = services.Get<ISandboxService>();
                    if (sandbox == null) return Grade.Of(0, "no sandbox service");
                    var run = await sandbox.RunAsync(new SandboxRunRequest(new SandboxCommand(["python3", "main.py"]), [SandboxFile.Text("main.py", "print(6*7)")]), cancellation);
                    await using (var session = await sandbox.OpenSessionAsync(new SandboxSessionOptions(), cancellation))
                    {
                        var put = await session.PutFilesAsync([SandboxFile.Text("a.py", "open('out.txt', 'w').write(str(6*7))")], cancellation);
                        var exec = await session.ExecAsync(new SandboxCommand(["python3", "a.py"]), cancellation);
                        var read = await session.GetFileAsync("out.txt", 100, cancellation);
                        string got = read.Content is { } bytes ? System.Text.Encoding.UTF8.GetString(bytes) : $"(no file: {read.Error})";
                        bool ok = run.Stdout.Text.Trim() == "42" && put.Ok && exec.Outcome == SandboxOutcome.Ok && got == "42";
                        return new Grade(ok ? 1 : 0, new Dictionary<string, double>(), $"{sandbox.Backend}: run said '{run.Stdout.Text.Trim()}' ({run.Outcome} {run.Detail}), session file said '{got}' ({exec.Outcome} {exec.Detail})", new Dictionary<string, string>());
                    }
                case "nan": return Grade.Of(double.NaN, "not a number");
                case "infinite_component": return new Grade(1, new Dictionary<string, double> { ["bonus"] = double.PositiveInfinity }, "infinite bonus", new Dictionary<string, string>());
                case "throw": throw new InvalidOperationException("the grader broke");
            }
            return Grade.Of(_answer?.Content.Trim() == "ok" ? 1 : 0, "honest grade");
        }

        private static int Recurse(int depth) => depth == int.MaxValue ? depth : Recurse(depth + 1) + 1;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
