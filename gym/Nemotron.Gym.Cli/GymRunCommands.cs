using System.CommandLine;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Training.Grpo;
using Nemotron.Gym.Runs;
using Nemotron.Gym.Store;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>gym rl over environments (Orleans), gym runs list, gym rollouts export|import.</summary>
internal static class GymRunCommands
{
    /// <summary>Silo options for a run config.</summary>
    public static GymSiloOptions SiloOptions(GymRunConfig cfg)
    {
        var o = GymSiloOptions.For(cfg.Cluster);
        o.StateStorage = "sqlite:" + Path.Combine(Path.GetDirectoryName(Path.GetFullPath(cfg.Out))!, "gym-state.db");
        o.PluginFolders.AddRange(cfg.Plugins);
        return o;
    }

    public static async Task<int> RunAsync(GymRunConfig cfg, CancellationToken ct)
    {
        var observer = new RlConsoleObserver();
        observer.OnMessage(cfg.Cluster.Membership == "postgres"
            ? $"starting a silo at {GymSilo.AdvertisedAddress(cfg.Cluster.Address)}:{cfg.Cluster.SiloPort} in cluster '{cfg.Cluster.ClusterId}' (membership in PostgreSQL; `gym silo` adds workers)"
            : $"starting a silo (localhost membership, silo port {cfg.Cluster.SiloPort})");
        using var silo = await GymSilo.StartAsync(SiloOptions(cfg), ct);
        try
        {
            var grains = (IGrainFactory)silo.Services.GetService(typeof(IGrainFactory))!;
            await using var store = await RolloutStores.OpenAsync(cfg.StoreConnection, ct);
            using var backend = Backends.Create(cfg.Device, cfg.Threads);
            RlOutcome outcome;
            try { outcome = await GymRun.RunAsync(cfg, backend, grains, store, observer, ct); }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                AnsiConsole.MarkupLine("[yellow]paused[/]: run the same command to resume");
                return 130;
            }
            if (outcome.Interrupted) return 130;
            // A run without held-out tasks (the demo scores its checkpoints with gym eval afterwards) has no table.
            if (outcome.Before.Count == 0 && outcome.After.Count == 0)
            {
                AnsiConsole.MarkupLineInterpolated($"[green]rl done[/]: checkpoint {outcome.FinalCheckpoint}; rollouts in {cfg.StoreConnection}");
                return 0;
            }
            AnsiConsole.MarkupLine("[green]rl done[/]: held-out reward per environment");
            var table = new Table().AddColumns("environment", "before", "after", "change");
            foreach (var env in outcome.After.Keys.Union(outcome.Before.Keys).Order(StringComparer.Ordinal))
            {
                double b = outcome.Before.GetValueOrDefault(env), a = outcome.After.GetValueOrDefault(env);
                table.AddRow(env, $"{b:F3}", $"{a:F3}", $"{a - b:+0.000;-0.000}");
            }
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLineInterpolated($"checkpoint {outcome.FinalCheckpoint}; rollouts in {cfg.StoreConnection}");
            return 0;
        }
        finally
        {
            await silo.StopAsync(CancellationToken.None);
        }
    }

    public static void AddTo(RootCommand root)
    {
        var runs = new Command("runs", "Runs and their state.");
        var store = new Option<string>("--store") { Description = "A run folder, its rollouts.db, sqlite:PATH or postgres:CONNECTION", Required = true };
        var list = new Command("list", "List the runs in a store: status, step, totals.") { store };
        list.SetAction((parse, ct) => Cli.Run(async () =>
        {
            await using var s = await OpenStore(parse.GetValue(store)!, ct);
            var table = new Table().AddColumns("run", "status", "step", "rollouts", "updated");
            foreach (var r in await s.ListRunsAsync(ct))
                table.AddRow(Markup.Escape(r.RunId), r.Status, $"{r.Step}/{r.TotalSteps}", (await s.CountRolloutsAsync(r.RunId, ct)).ToString(), r.Updated.ToLocalTime().ToString("yyyy-MM-dd HH:mm"));
            AnsiConsole.Write(table);
            return 0;
        }));
        runs.Subcommands.Add(list);
        root.Subcommands.Add(runs);

        var rollouts = new Command("rollouts", "Rollouts in a store: export and import as JSONL in NeMo-Gym's rollout shape.");
        var run = new Option<string?>("--run") { Description = "The run id (default: the store's only run)" };
        var output = new Option<string>("--out", "-o") { Description = "JSONL file to write", Required = true };
        var env = new Option<string?>("--environment") { Description = "Only this environment" };
        var from = new Option<int?>("--from-step");
        var to = new Option<int?>("--to-step");
        var export = new Command("export", "Write a run's rollouts as JSONL.") { store, run, output, env, from, to };
        export.SetAction((parse, ct) => Cli.Run(async () =>
        {
            await using var s = await OpenStore(parse.GetValue(store)!, ct);
            string runId = parse.GetValue(run) ?? await OnlyRun(s, ct);
            await using var writer = new StreamWriter(parse.GetValue(output)!);
            int n = 0;
            await RolloutJsonl.ExportAsync(Count(s.ReadRolloutsAsync(new RolloutQuery(runId, parse.GetValue(from), parse.GetValue(to), parse.GetValue(env)), ct), () => n++), writer, ct);
            AnsiConsole.MarkupLineInterpolated($"wrote {n} rollouts of run {runId} to {parse.GetValue(output)}");
            return 0;
        }));
        var input = new Option<string>("--in", "-i") { Description = "JSONL file to read", Required = true };
        var import = new Command("import", "Read rollouts from JSONL into a store (rollouts already there are skipped).") { store, input };
        import.SetAction((parse, ct) => Cli.Run(async () =>
        {
            await using var s = await OpenStore(parse.GetValue(store)!, ct);
            string path = parse.GetValue(input)!;
            using var reader = new StreamReader(path);
            // All or nothing: every line is read and checked first, then the rollouts go in one transaction, so a bad
            // line leaves the store as it was instead of half imported.
            var all = new List<StoredRollout>();
            var lastStep = new Dictionary<string, int>();
            await foreach (var r in RolloutJsonl.ImportAsync(reader, path, ct))
            {
                all.Add(r);
                lastStep[r.RunId] = Math.Max(lastStep.GetValueOrDefault(r.RunId), r.Step);
            }
            int read = all.Count;
            int added = all.Count > 0 ? await s.AddRolloutsAsync(all, ct) : 0;
            // Runs that arrive only as rollouts (from another store, or from NeMo-Gym) get a record, so that
            // `gym runs list` shows them and `gym rollouts export` finds them; a run already recorded is left as it is.
            var known = (await s.ListRunsAsync(ct)).Select(r => r.RunId).ToHashSet();
            var now = DateTimeOffset.UtcNow;
            foreach (var (runId, step) in lastStep.Where(kv => !known.Contains(kv.Key)))
                await s.PutRunAsync(new RunRecord(runId, "imported", step, step, "", now, now), ct);
            AnsiConsole.MarkupLineInterpolated($"read {read} rollouts from {path}; {added} new, {read - added} already stored");
            return 0;
        }));
        rollouts.Subcommands.Add(export);
        rollouts.Subcommands.Add(import);
        root.Subcommands.Add(rollouts);
    }

    private static async IAsyncEnumerable<StoredRollout> Count(IAsyncEnumerable<StoredRollout> source, Action counted)
    {
        await foreach (var r in source) { counted(); yield return r; }
    }

    private static async Task<string> OnlyRun(IRolloutStore s, CancellationToken ct)
    {
        var all = await s.ListRunsAsync(ct);
        return all.Count == 1 ? all[0].RunId
            : throw new CliException(all.Count == 0 ? "the store holds no runs" : $"the store holds {all.Count} runs: pass --run ({string.Join(", ", all.Select(r => r.RunId))})");
    }

    private static Task<IRolloutStore> OpenStore(string target, CancellationToken ct)
    {
        if (Directory.Exists(target)) target = Path.Combine(target, "rollouts.db");
        if (!target.Contains(':') && !File.Exists(target)) throw new CliException($"{target}: no rollout store there");
        return RolloutStores.OpenAsync(target.Contains(':') ? target : "sqlite:" + target, ct);
    }
}
