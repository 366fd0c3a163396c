using System.CommandLine;
using System.Diagnostics;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.PluginWorker;
using Nemotron.Gym.Plugins;
using Nemotron.Gym.Model.Chat;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>gym env list | check | grade | play | new: the environment author's tools.</summary>
internal static class EnvCommands
{
    private static readonly Option<string[]> Plugins = new("--plugins") { Description = "Extra plugin folders to search (repeatable); NEMOTRON_GYM_PLUGINS works too" };
    private static readonly Option<string[]> Settings = new("--setting") { Description = "An environment setting, key=value (repeatable)" };

    public static void AddTo(RootCommand root)
    {
        var env = new Command("env", "Write, check and try environments (C# plugins).");
        env.Subcommands.Add(List());
        env.Subcommands.Add(Check());
        env.Subcommands.Add(Grade());
        env.Subcommands.Add(Play());
        env.Subcommands.Add(SftData());
        env.Subcommands.Add(Export());
        env.Subcommands.Add(Scaffold.Command());
        root.Subcommands.Add(env);
    }

    /// <summary>
    /// Where this process runs plugins: in worker processes (the default; the CLI itself never runs plugin code, so a
    /// plugin that exits or hangs cannot take a command down with it), or here with --in-process.
    /// </summary>
    public static PluginWorkers Workers => _workers.Value;
    private static readonly Lazy<PluginWorkers> _workers = new(() => new PluginWorkers(PluginWorkerSettings.Default));

    private static IEnumerable<string> SearchPaths(ParseResult parse) => PluginLoader.DefaultSearchPaths().Concat(parse.GetValue(Plugins) ?? []);

    private static Dictionary<string, string> ParseSettings(ParseResult parse)
    {
        var d = new Dictionary<string, string>();
        foreach (var s in parse.GetValue(Settings) ?? [])
        {
            int eq = s.IndexOf('=');
            if (eq <= 0) throw new CliException($"--setting {s}: expected key=value");
            d[s[..eq].Trim()] = s[(eq + 1)..].Trim();
        }
        return d;
    }

    private static Command List()
    {
        var cmd = new Command("list", "List the environments found, and the plugins that failed to load.") { Plugins };
        cmd.SetAction(parse => Cli.Run(() =>
        {
            var (envs, errors) = Workers.LoadAll(SearchPaths(parse));
            var table = new Table().AddColumns("name", "version", "splits", "settings", "description");
            foreach (var e in envs.OrderBy(e => e.Descriptor.Name))
                table.AddRow(Markup.Escape(e.Descriptor.Name), Markup.Escape(e.Descriptor.Version), Markup.Escape(string.Join(", ", e.Descriptor.Splits)),
                    Markup.Escape(string.Join(", ", e.Descriptor.Options.Select(o => $"{o.Name}={o.Default}"))), Markup.Escape(e.Descriptor.Description));
            AnsiConsole.Write(table);
            foreach (var err in errors) AnsiConsole.MarkupLineInterpolated($"[red]failed:[/] {err.Source}: {err.Error}");
            AnsiConsole.MarkupLineInterpolated($"{envs.Count} environment(s), {errors.Count} plugin error(s); searched {string.Join(", ", SearchPaths(parse))}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>Finds an environment by name, plugin folder, assembly, or project folder (built first).</summary>
    public static PluginEnvironment Resolve(string target, IEnumerable<string> searchPaths)
    {
        if (File.Exists(target) && target.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)) return Single(Workers.LoadAssembly(target), target);
        if (Directory.Exists(target))
        {
            var projects = Directory.GetFiles(target, "*.csproj").Where(p => !p.EndsWith(".Tests.csproj", StringComparison.Ordinal)).ToArray();
            if (projects.Length == 1) return Single(Workers.LoadAssembly(Build(projects[0])), target);
            return Single(Workers.LoadFolder(target), target);
        }
        return ByName(target, Workers.LoadAll(searchPaths));
    }

    /// <summary>The environment called <paramref name="name"/> among those loaded; if none, an error naming the known ones and the plugins that failed.</summary>
    public static PluginEnvironment ByName(string name, (List<PluginEnvironment> Environments, List<PluginError> Errors) loaded)
    {
        var (envs, errors) = loaded;
        var found = envs.FirstOrDefault(e => e.Descriptor.Name == name);
        if (found != null) return found;
        var hint = errors.Count > 0 ? $"; plugin errors: {string.Join("; ", errors.Select(e => $"{e.Source}: {e.Error}"))}" : "";
        throw new CliException($"no environment named '{name}' (known: {string.Join(", ", envs.Select(e => e.Descriptor.Name))}){hint}");
    }

    private static PluginEnvironment Single((List<PluginEnvironment> Environments, PluginError? Error) r, string target)
    {
        if (r.Error != null) throw new CliException($"{r.Error.Source}: {r.Error.Error}");
        if (r.Environments.Count != 1) throw new CliException($"{target}: expected one environment, found {r.Environments.Count}");
        return r.Environments[0];
    }

    /// <summary>Builds a plugin project into bin/plugin/ and returns its assembly.</summary>
    private static string Build(string project)
    {
        var outDir = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(project))!, "bin", "plugin");
        AnsiConsole.MarkupLineInterpolated($"[grey]building {project}...[/]");
        var psi = new ProcessStartInfo("dotnet", ["build", project, "-c", "Release", "-o", outDir, "--nologo", "-v", "q"]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new CliException($"{project}: build failed:\n{output.Trim()}");
        return Path.Combine(outDir, Path.GetFileNameWithoutExtension(project) + ".dll");
    }

    private static Command Check()
    {
        var target = new Argument<string>("target") { Description = "Environment name, plugin folder, assembly, or plugin project folder" };
        var tasks = new Option<int>("--tasks") { Description = "Tasks per split for procedural environments", DefaultValueFactory = _ => 50 };
        var cmd = new Command("check", "Load an environment, validate every task record, replay each reference (full reward) and wrong answers (lower).")
            { target, tasks, Plugins, Settings };
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            var plugin = Resolve(parse.GetValue(target)!, SearchPaths(parse));
            var env = await HostedEnvironment.StartAsync(plugin, ParseSettings(parse), HostLimits.Default, line => AnsiConsole.MarkupLineInterpolated($"[grey]{line}[/]"), await SandboxCommands.EnvironmentServicesAsync(ct), ct);
            var report = await EnvironmentChecker.CheckAsync(env, parse.GetValue(tasks), 1, ct);
            foreach (var p in report.Problems.Take(50))
                AnsiConsole.MarkupLineInterpolated($"[red]✗[/] {(p.TaskId.Length > 0 ? p.TaskId + ": " : "")}{p.Problem}");
            if (report.Problems.Count > 50) AnsiConsole.MarkupLineInterpolated($"... and {report.Problems.Count - 50} more");
            AnsiConsole.MarkupLine((report.Passed ? "[green]passed[/]" : "[red]failed[/]") +
                Markup.Escape($": {report.Environment} {plugin.Descriptor.Version}, {report.TasksChecked} tasks checked, {report.WrongAnswersTried} wrong answers tried, {report.Problems.Count} problem(s)"));
            return report.Passed ? 0 : 1;
        }));
        return cmd;
    }

    private static async Task<TaskRecord> FindTask(HostedEnvironment env, string taskArg, string? split, CancellationToken ct)
    {
        if (File.Exists(taskArg))
        {
            var line = File.ReadLines(taskArg).FirstOrDefault(l => !string.IsNullOrWhiteSpace(l)) ?? throw new CliException($"{taskArg}: empty task file");
            try { return TaskRecord.Parse(line, $"{taskArg}:1"); }
            catch (TaskFormatException e) { throw new CliException(e.Message); }
        }
        foreach (var s in split != null ? [split] : env.Descriptor.Splits)
        {
            var tasks = await env.LoadTasksAsync(new TaskQuery(s, 0, 1), ct);
            var t = tasks.FirstOrDefault(x => x.Id == taskArg);
            if (t != null) return t;
        }
        throw new CliException($"environment '{env.Name}' has no task '{taskArg}' (a task id, or a file holding one task line)");
    }

    private static Command Grade()
    {
        var name = new Argument<string>("environment") { Description = "Environment name, plugin folder or project folder" };
        var task = new Option<string>("--task") { Description = "A task id, or a JSONL file whose first line is the task", Required = true };
        var response = new Option<string>("--response") { Description = "The response text, or a file holding it (several assistant turns: separate them with <|end|>)", Required = true };
        var split = new Option<string?>("--split") { Description = "Where to look for the task id" };
        var cmd = new Command("grade", "Grade one response to one task and print the grade, its reason and evidence.") { name, task, response, split, Plugins, Settings };
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            var plugin = Resolve(parse.GetValue(name)!, SearchPaths(parse));
            // Grading code answers needs the sandbox, as in check and play.
            var env = await HostedEnvironment.StartAsync(plugin, ParseSettings(parse), HostLimits.Default, services: await SandboxCommands.EnvironmentServicesAsync(ct), cancellation: ct);
            RequireSplit(env, parse.GetValue(split));
            var record = await FindTask(env, parse.GetValue(task)!, parse.GetValue(split), ct);
            string text = parse.GetValue(response)!;
            if (File.Exists(text)) text = await File.ReadAllTextAsync(text, ct);
            var turns = text.Split("<|end|>").Select(t => t.Trim()).Where(t => t.Length > 0).Select(t => AssistantTurn.Parse(t + "<|end|>")).ToList();
            if (turns.Count == 0) turns.Add(AssistantTurn.Parse(""));
            var (grade, problem, _) = await EnvironmentChecker.ReplayAsync(env, record, turns, 1, ct);
            if (problem != null) throw new CliException(problem);
            PrintGrade(grade!);
            return 0;
        }));
        return cmd;
    }

    /// <summary>A split the environment does not declare is named back with the ones it does (instead of failing inside the plugin).</summary>
    private static void RequireSplit(HostedEnvironment env, string? split)
    {
        if (split != null && !env.Descriptor.Splits.Contains(split))
            throw new CliException($"--split {split}: environment '{env.Name}' has no such split; it has {string.Join(", ", env.Descriptor.Splits)}");
    }

    public static void PrintGrade(Grade grade)
    {
        AnsiConsole.MarkupLineInterpolated($"reward: [bold]{grade.Reward:0.####}[/]");
        AnsiConsole.MarkupLineInterpolated($"reason: {grade.Reason}");
        foreach (var (k, v) in grade.Components) AnsiConsole.MarkupLineInterpolated($"  component {k} = {v:0.####}");
        foreach (var (k, v) in grade.Evidence) AnsiConsole.MarkupLineInterpolated($"  evidence {k}: {v}");
    }

    private static Command Play()
    {
        var name = new Argument<string>("environment") { Description = "Environment name, plugin folder or project folder" };
        var task = new Option<string?>("--task") { Description = "A task id or file (default: the first task of the first split)" };
        var cmd = new Command("play", "Play an episode yourself: you write the assistant turns (the model's chat format: <tool_call>{...}</tool_call> for tools).") { name, task, Plugins, Settings };
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            var plugin = Resolve(parse.GetValue(name)!, SearchPaths(parse));
            // Environments that run code (code, swe) get the default sandbox when this machine can run it.
            var env = await HostedEnvironment.StartAsync(plugin, ParseSettings(parse), HostLimits.Default, services: await SandboxCommands.EnvironmentServicesAsync(ct), cancellation: ct);
            var record = parse.GetValue(task) is { } t ? await FindTask(env, t, null, ct)
                : (await env.LoadTasksAsync(new TaskQuery(env.Descriptor.Splits[0], 1, 1), ct))[0];
            await using var episode = await env.OpenAsync(record, new EpisodeContext(1, 0), ct);
            AnsiConsole.MarkupLineInterpolated($"[grey]task {record.Id}[/]");
            foreach (var tool in episode.Tools) AnsiConsole.MarkupLineInterpolated($"[grey]tool {tool.Name}: {tool.Description} {tool.Parameters.ToJsonString()}[/]");
            foreach (var m in episode.Opening) AnsiConsole.MarkupLineInterpolated($"[bold]{m.Role.ToString().ToLowerInvariant()}:[/] {m.Content}");
            for (int turn = 1; turn <= 200; turn++)
            {
                AnsiConsole.Markup("[bold]assistant>[/] ");
                var line = Console.ReadLine();
                if (line == null) break;
                var step = await episode.StepAsync(AssistantTurn.Parse(line + "<|end|>"), ct);
                if (step.Done) break;
                foreach (var m in step.Reply) AnsiConsole.MarkupLineInterpolated($"[bold]{m.Role.ToString().ToLowerInvariant()}{(m.Name != null ? $" ({m.Name})" : "")}:[/] {m.Content}");
            }
            PrintGrade(await episode.GradeAsync(ct));
            return 0;
        }));
        return cmd;
    }

    private static Command SftData()
    {
        var name = new Argument<string>("environment") { Description = "Environment name, plugin folder or project folder" };
        var split = new Option<string>("--split") { Description = "The split whose tasks to use", DefaultValueFactory = _ => "train" };
        var count = new Option<int>("--count") { Description = "How many tasks", DefaultValueFactory = _ => 1000 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var outFile = new Option<string>("--out") { Description = "The chat JSONL file to write (one conversation per line)", Required = true };
        var cmd = new Command("sft-data", "Write supervised chat conversations from the environment's reference answers (only those it grades at full reward).")
            { name, split, count, seed, outFile, Plugins, Settings };
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            if (parse.GetValue(count) < 1) throw new CliException($"--count {parse.GetValue(count)}: give how many tasks to use, 1 or more");
            var plugin = Resolve(parse.GetValue(name)!, SearchPaths(parse));
            // Only references graded at full reward are written, and code references are graded by running them.
            var env = await HostedEnvironment.StartAsync(plugin, ParseSettings(parse), HostLimits.Default, services: await SandboxCommands.EnvironmentServicesAsync(ct), cancellation: ct);
            RequireSplit(env, parse.GetValue(split));
            var result = await ReferenceConversations.BuildAsync(env, new TaskQuery(parse.GetValue(split)!, parse.GetValue(count), parse.GetValue(seed)), ct);
            string path = parse.GetValue(outFile)!;
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            await File.WriteAllLinesAsync(path, result.Conversations.Select(ChatJsonl.ToLine), ct);
            AnsiConsole.MarkupLineInterpolated($"wrote {result.Conversations.Count} conversations to {path} ({result.WithoutReference} tasks without a reference, {result.NotFullReward} references below full reward, {result.Failed} failed)");
            return 0;
        }));
        return cmd;
    }

    private static Command Export()
    {
        var name = new Argument<string>("environment") { Description = "Environment name, plugin folder or project folder" };
        var split = new Option<string>("--split") { Description = "The split whose tasks to write", DefaultValueFactory = _ => "train" };
        var count = new Option<int>("--count") { Description = "How many tasks (0: all the split has; procedural environments need a count)", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var field = new Option<string?>("--field") { Description = "Write only this top-level field of each record (verifier_metadata: swe's SWE-bench records)" };
        var outFile = new Option<string>("--out") { Description = "The JSONL file to write (one task per line)", Required = true };
        var cmd = new Command("export", "Write an environment's task records as JSONL (NeMo-Gym's task shape, or one field of it).")
            { name, split, count, seed, field, outFile, Plugins, Settings };
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            var plugin = Resolve(parse.GetValue(name)!, SearchPaths(parse));
            var env = await HostedEnvironment.StartAsync(plugin, ParseSettings(parse), HostLimits.Default, cancellation: ct);
            var tasks = await env.LoadTasksAsync(new TaskQuery(parse.GetValue(split)!, parse.GetValue(count), parse.GetValue(seed)), ct);
            var lines = new List<string>();
            foreach (var t in tasks)
            {
                var line = t.ToJsonLine();
                if (parse.GetValue(field) is { } f)
                {
                    var node = System.Text.Json.Nodes.JsonNode.Parse(line)![f] ?? throw new CliException($"task {t.Id} has no field '{f}'");
                    line = node.ToJsonString(new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
                }
                lines.Add(line);
            }
            string path = parse.GetValue(outFile)!;
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            await File.WriteAllLinesAsync(path, lines, ct);
            AnsiConsole.MarkupLineInterpolated($"wrote {lines.Count} task records of {env.Name} ({parse.GetValue(split)}) to {path}");
            return 0;
        }));
        return cmd;
    }
}
