using System.Diagnostics;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Environments.Swe;
using Nemotron.Gym.Sandbox;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// How well patch_similarity (no execution) tracks the execution reward over the task set: five patches per task,
/// each graded by running the hidden tests (resolved) and by similarity to the gold patch:
/// gold; empty; partial (only the gold patch's removed lines, nothing added); same_line (the gold patch's lines
/// touched but left as they were, with a trailing comment); elsewhere (another task's bug put in a different place
/// of the same repository). Prints per kind the mean similarity and resolved rate, Pearson's r over all patches, and
/// the mean similarity of resolved against unresolved patches.
/// Run: dotnet run -c Release --project tests/Nemotron.Gym.Benchmarks -- swe-similarity [--tasks N]
/// </summary>
public sealed class SweReport : IBenchmark
{
    public string Name => "swe-similarity";
    public string Description => "swe: patch_similarity against execution reward on gold, empty, partial and wrong patches [--tasks N]";

    private sealed class NoLog : IEnvironmentLog { public void Write(string message) => Console.Error.WriteLine(message); }

    private sealed class Services(ISandboxService sandbox) : IEnvironmentServices
    {
        public T? Get<T>() where T : class => typeof(T) == typeof(ISandboxService) ? (T)(object)sandbox : null;
    }

    /// <summary>The swe environment over a sandbox, with its data from this program's folder.</summary>
    public static async Task<SweEnvironment> StartAsync(ISandboxService sandbox)
    {
        var env = new SweEnvironment();
        var values = env.Descriptor.Options.ToDictionary(o => o.Name, o => o.Default);
        await env.InitializeAsync(new EnvironmentContext(values, Path.Combine(AppContext.BaseDirectory, "data"), new Services(sandbox), new NoLog()), default);
        return env;
    }

    public async Task<int> RunAsync(string[] args)
    {
        int limit = args.Length >= 2 && args[0] == "--tasks" ? int.Parse(args[1]) : int.MaxValue;
        var settings = new SandboxSettings { SiloName = "swe-report", FirstUid = 64700, Slots = 16, ScratchDirectory = "/run/nemotron-gym-sandbox-swe-report" };
        await SandboxImage.EnsureAsync(Path.Combine(Nemotron.Gym.TestSupport.RepoPaths.Root, "sandbox-images"), settings.ImagesDirectory, "python", default);
        var (sandbox, error) = BwrapSandboxService.Create(settings);
        if (sandbox is null) { Console.Error.WriteLine(error); return 1; }
        using (sandbox)
        {
            var env = await StartAsync(sandbox);
            var tasks = (await env.ReadTasksAsync(default)).Take(limit).ToList();
            var all = await env.ReadTasksAsync(default);
            var work = new List<(string Kind, SweTask Task, string Patch)>();
            foreach (var task in tasks)
            {
                work.Add(("gold", task, task.GoldPatch));
                work.Add(("empty", task, ""));
                work.Add(("partial", task, Partial(task.GoldPatch)));
                work.Add(("same_line", task, SameLine(task.GoldPatch)));
                if (Elsewhere(env, task, all) is { } other) work.Add(("elsewhere", task, other));
            }
            var results = new (string Kind, double Similarity, double Resolved, bool Masked)[work.Count];
            var clock = Stopwatch.StartNew();
            await Parallel.ForEachAsync(Enumerable.Range(0, work.Count), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, ct) =>
            {
                var (kind, task, patch) = work[i];
                var grade = await env.Grader.GradeAsync(task, patch, SweGradingSettings.Default, ct);
                results[i] = (kind, grade.Components.GetValueOrDefault("patch_similarity"), grade.Reward, grade.Masked);
            });
            Console.WriteLine($"{tasks.Count} tasks, {work.Count} patches graded by execution in {clock.Elapsed.TotalSeconds:0} s ({work.Count / clock.Elapsed.TotalSeconds:0.0}/s, 4 at once)");
            Console.WriteLine($"{"patch",-10} {"n",5} {"similarity",11} {"resolved",9} {"masked",7}");
            foreach (var kind in new[] { "gold", "empty", "partial", "same_line", "elsewhere" })
            {
                var rows = results.Where(r => r.Kind == kind).ToList();
                if (rows.Count == 0) continue;
                Console.WriteLine($"{kind,-10} {rows.Count,5} {rows.Average(r => r.Similarity),11:0.000} {rows.Average(r => r.Resolved),9:0.000} {rows.Count(r => r.Masked),7}");
            }
            var judged = results.Where(r => !r.Masked).ToList();
            Console.WriteLine($"Pearson r(similarity, resolved) over {judged.Count} patches: {Pearson(judged.Select(r => r.Similarity).ToList(), judged.Select(r => r.Resolved).ToList()):0.000}");
            var yes = judged.Where(r => r.Resolved == 1).ToList();
            var no = judged.Where(r => r.Resolved == 0).ToList();
            if (yes.Count > 0 && no.Count > 0)
                Console.WriteLine($"mean similarity: resolved {yes.Average(r => r.Similarity):0.000} (n={yes.Count}), not resolved {no.Average(r => r.Similarity):0.000} (n={no.Count}); not resolved with similarity >= 0.5: {no.Count(r => r.Similarity >= 0.5)}");
        }
        return 0;
    }

    // Only the removed lines of each hunk: the buggy code goes, nothing takes its place.
    private static string Partial(string gold) => Rewrite(gold, line => line.StartsWith('+') ? null : line);

    // The lines the gold patch removes, removed and put back with a comment: the right place, no fix.
    private static string SameLine(string gold) => Rewrite(gold, line =>
        line.StartsWith('+') ? null : line, added: removed => removed.TrimEnd().EndsWith(':') || removed.TrimEnd().EndsWith('\\') ? removed : removed.TrimEnd() + "  # checked");

    /// <summary>
    /// Rebuilds a patch hunk by hunk: <paramref name="keep"/> maps each body line (null drops it); with
    /// <paramref name="added"/>, each removed line is followed by an added line made from it. Header counts are redone.
    /// </summary>
    private static string Rewrite(string patch, Func<string, string?> keep, Func<string, string>? added = null)
    {
        var output = new System.Text.StringBuilder();
        var lines = patch.Split('\n');
        int i = 0;
        while (i < lines.Length)
        {
            var line = lines[i];
            if (!line.StartsWith("@@", StringComparison.Ordinal)) { if (line.Length > 0 || i < lines.Length - 1) output.Append(line).Append('\n'); i++; continue; }
            var start = line.Split(' ')[1].TrimStart('-').Split(',')[0];
            var body = new List<string>();
            i++;
            while (i < lines.Length && (lines[i].StartsWith(' ') || lines[i].StartsWith('-') || lines[i].StartsWith('+') || lines[i].StartsWith('\\')))
            {
                if (lines[i].StartsWith("---", StringComparison.Ordinal) && i + 1 < lines.Length && lines[i + 1].StartsWith("+++", StringComparison.Ordinal)) break;
                if (keep(lines[i]) is { } kept) body.Add(kept);
                if (added is not null && lines[i].StartsWith('-')) body.Add("+" + added(lines[i][1..]));
                i++;
            }
            int oldCount = body.Count(b => b.StartsWith(' ') || b.StartsWith('-'));
            int newCount = body.Count(b => b.StartsWith(' ') || b.StartsWith('+'));
            output.Append($"@@ -{start},{oldCount} +{start},{newCount} @@\n");
            foreach (var b in body) output.Append(b).Append('\n');
        }
        return output.ToString();
    }

    // Another task's bug in the same repository, at a different place, that applies on top of this task's bug.
    private static string? Elsewhere(SweEnvironment env, SweTask task, IReadOnlyList<SweTask> all)
    {
        var start = env.Repositories.Starting(task);
        var index = all.ToList().IndexOf(task);
        for (int k = 1; k < all.Count; k++)
        {
            var other = all[(index + k * 7) % all.Count];
            if (other.Repo != task.Repo || other.InstanceId == task.InstanceId) continue;
            try
            {
                UnifiedDiff.Apply(start, other.BugPatch);
                return other.BugPatch;
            }
            catch (PatchException) { }
        }
        return null;
    }

    private static double Pearson(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        double mx = x.Average(), my = y.Average();
        double sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < x.Count; i++)
        {
            sxy += (x[i] - mx) * (y[i] - my);
            sxx += (x[i] - mx) * (x[i] - mx);
            syy += (y[i] - my) * (y[i] - my);
        }
        return sxx == 0 || syy == 0 ? 0 : sxy / Math.Sqrt(sxx * syy);
    }
}
