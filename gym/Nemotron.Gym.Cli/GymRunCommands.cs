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
        // The run's state lives in its folder; a run that an earlier version kept beside the folder is moved in.
        RunStateFile.MoveLegacyState(cfg.Out, cfg.RunId);
        o.StateStorage = "sqlite:" + RunStateFile.PathFor(cfg.Out);
        o.PluginFolders.AddRange(cfg.Plugins);
        o.Sandbox = RunSandboxSection.For(cfg.Sandbox, cfg.RunId);
        o.Judge = cfg.Judge;
        return o;
    }

    public static async Task<int> RunAsync(GymRunConfig cfg, CancellationToken ct, bool newRun = false)
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
            IRlObserver progress = observer;
            if (silo.Services.GetService(typeof(SiloSandbox)) is SiloSandbox sandbox)
            {
                var pool = await sandbox.Ready;
                observer.OnMessage(pool is null ? $"no sandbox on this silo ({sandbox.Unavailable}); code environments hand back grades that are not judged, and the trainer masks them"
                    : $"sandbox pool: {sandbox.Settings.Backend}, {pool.Concurrency} at once, queue {sandbox.Settings.QueueCapacity}; health probe {sandbox.Probe!.WallTime.TotalMilliseconds:0} ms");
                if (pool is not null) progress = new SandboxMetricsObserver(observer, sandbox, cfg.Out);
            }
            RlOutcome outcome;
            try { outcome = await GymRun.RunAsync(cfg, backend, grains, store, progress, ct, newRun); }
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
        list.SetAction((parse, ct) => Cli.Run(() => WithStore(parse.GetValue(store)!, async () =>
        {
            await using var s = await OpenStore(parse.GetValue(store)!, ct);
            var table = new Table().AddColumns("run", "status", "step", "rollouts", "updated");
            foreach (var r in await s.ListRunsAsync(ct))
                table.AddRow(Markup.Escape(r.RunId), r.Status, $"{r.Step}/{r.TotalSteps}", (await s.CountRolloutsAsync(r.RunId, ct)).ToString(), r.Updated.ToLocalTime().ToString("yyyy-MM-dd HH:mm"));
            AnsiConsole.Write(table);
            return 0;
        })));
        runs.Subcommands.Add(list);
        root.Subcommands.Add(runs);

        var rollouts = new Command("rollouts", "Rollouts in a store: export and import as JSONL in NeMo-Gym's rollout shape.");
        var run = new Option<string?>("--run") { Description = "The run id (default: the store's only run)" };
        var output = new Option<string>("--out", "-o") { Description = "JSONL file to write", Required = true };
        var env = new Option<string?>("--environment") { Description = "Only this environment" };
        var from = new Option<int?>("--from-step");
        var to = new Option<int?>("--to-step");
        var export = new Command("export", "Write a run's rollouts as JSONL.") { store, run, output, env, from, to };
        export.SetAction((parse, ct) => Cli.Run(() => WithStore(parse.GetValue(store)!, async () =>
        {
            await using var s = await OpenStore(parse.GetValue(store)!, ct);
            string runId = parse.GetValue(run) ?? await OnlyRun(s, ct);
            string path = parse.GetValue(output)!;
            if (Directory.Exists(path)) throw new CliException($"{path}: is a folder; give --out a file name (e.g. {Path.Combine(path, runId + ".jsonl")})");
            int n = 0;
            try
            {
                await using var writer = new StreamWriter(path);
                await RolloutJsonl.ExportAsync(Count(s.ReadRolloutsAsync(new RolloutQuery(runId, parse.GetValue(from), parse.GetValue(to), parse.GetValue(env)), ct), () => n++), writer, ct);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not RolloutStoreUnavailableException)
            {
                throw new CliException($"{path}: cannot write the export ({e.Message}): choose a writable place with free space for --out");
            }
            AnsiConsole.MarkupLineInterpolated($"wrote {n} rollouts of run {runId} to {path}");
            return 0;
        })));
        var input = new Option<string>("--in", "-i") { Description = "JSONL file to read", Required = true };
        var import = new Command("import", "Read rollouts from JSONL into a store (rollouts already there are skipped).") { store, input };
        import.SetAction((parse, ct) => Cli.Run(() => WithStore(parse.GetValue(store)!, async () =>
        {
            string path = parse.GetValue(input)!;
            if (!File.Exists(path)) throw new CliException($"{path}: no such file");
            // Bytes that are not UTF-8 would otherwise become U+FFFD without a word.
            Nemotron.Gym.Conversation.StrictText.RequireUtf8(path);
            await using var s = await OpenStore(parse.GetValue(store)!, ct, mayCreate: true);
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
        })));
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

    /// <summary>
    /// Opens the store a command names. Only an import may make a new SQLite file (a mistyped path to read from must not
    /// leave an empty store behind).
    /// </summary>
    private static Task<IRolloutStore> OpenStore(string target, CancellationToken ct, bool mayCreate = false)
    {
        if (Directory.Exists(target)) target = Path.Combine(target, "rollouts.db");
        bool postgres = target.StartsWith("postgres:", StringComparison.Ordinal);
        string file = target.StartsWith("sqlite:", StringComparison.Ordinal) ? target["sqlite:".Length..] : target;
        if (!postgres && !File.Exists(file) && (!mayCreate || !target.StartsWith("sqlite:", StringComparison.Ordinal)))
            throw new CliException($"{file}: no rollout store there (check the path{(mayCreate ? "; to import into a new store, write sqlite:PATH" : "")})");
        return RolloutStores.OpenAsync(postgres || target.StartsWith("sqlite:", StringComparison.Ordinal) ? target : "sqlite:" + target, ct);
    }

    /// <summary>
    /// Runs a command over a store, turning the store's own failures (a file that is not a database or is damaged, a
    /// server that cannot be reached) into one line naming the store and what to do.
    /// </summary>
    private static async Task<int> WithStore(string target, Func<Task<int>> body)
    {
        try { return await body(); }
        catch (System.Data.Common.DbException e)
        {
            throw new CliException($"{target}: cannot read the rollout store ({e.Message.TrimEnd('.')}): it is damaged or not a rollout store; restore it from a copy or point --store at the right file");
        }
        catch (RolloutStoreUnavailableException e)
        {
            throw new CliException(e.Message);
        }
    }
}
