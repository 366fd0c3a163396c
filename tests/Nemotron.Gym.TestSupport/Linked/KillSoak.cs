using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Store;

namespace Nemotron.Gym.TestSupport;

/// <summary>What a kill soak saw and found.</summary>
public sealed record SoakReport(
    int Kills, int KillsBeforeFirstStep, int Steps, long Rollouts, long ExpectedRollouts, int MissingKeys, int DuplicateKeys,
    int StoreMetricSteps, int DuplicateStoreMetricSteps, int MetricsFileSteps, int DuplicateMetricsFileSteps, int RewardMismatchSteps,
    int CheckpointFallbacks, int OrphanFoldersRemoved, int OrphanFoldersLeft, string Status, int FinalExitCode, TimeSpan Wall)
{
    /// <summary>True when every (step, task, sample) is stored once, every step's metrics once, and the run completed.</summary>
    public bool Clean => MissingKeys == 0 && DuplicateKeys == 0 && Rollouts == ExpectedRollouts && StoreMetricSteps == Steps
        && DuplicateStoreMetricSteps == 0 && MetricsFileSteps == Steps && DuplicateMetricsFileSteps == 0 && RewardMismatchSteps == 0
        && OrphanFoldersLeft == 0 && Status == "completed" && FinalExitCode == 0;

    /// <summary>The counts on one line each.</summary>
    public override string ToString() => string.Join('\n',
        $"kills (SIGKILL)                  {Kills} ({KillsBeforeFirstStep} before the attempt's first step)",
        $"steps                            {Steps}",
        $"rollouts stored / expected       {Rollouts} / {ExpectedRollouts}",
        $"(step, task, sample) missing     {MissingKeys}",
        $"(step, task, sample) twice       {DuplicateKeys}",
        $"step metrics in store / twice    {StoreMetricSteps} / {DuplicateStoreMetricSteps}",
        $"metrics.jsonl steps / twice      {MetricsFileSteps} / {DuplicateMetricsFileSteps}",
        $"steps whose stored rewards disagree with their metrics  {RewardMismatchSteps}",
        $"damaged checkpoints skipped      {CheckpointFallbacks}",
        $"orphan .tmp folders removed/left {OrphanFoldersRemoved} / {OrphanFoldersLeft}",
        $"run status / final exit code     {Status} / {FinalExitCode}",
        $"wall                             {Wall.TotalSeconds:F0} s",
        Clean ? "CLEAN" : "NOT CLEAN");
}

/// <summary>
/// The kill soak: the real `gym rl` on a small config, killed with SIGKILL at random moments (seeded) and started
/// again each time, then run to its end; then the store and the run folder are checked: every (step, task, sample)
/// stored once, each step's metrics once in the store and in metrics.jsonl, each step's stored rewards the ones its
/// metrics were computed from, no orphaned temporary folder, and the run completed.
/// </summary>
public static class KillSoak
{
    /// <param name="work">An empty folder for the checkpoint, the config and the run.</param>
    /// <param name="kills">How many times the run is killed.</param>
    /// <param name="steps">The run's GRPO steps.</param>
    /// <param name="seed">Seeds the kill moments (and the run).</param>
    /// <param name="maxDelay">The longest part of a step a kill waits after the step lines it waits for.</param>
    /// <param name="log">Progress lines.</param>
    public static async Task<SoakReport> RunAsync(string work, int kills, int steps, int seed, TimeSpan maxDelay, Action<string>? log = null)
    {
        var clock = Stopwatch.StartNew();
        string gymDll = Path.Combine(RepoPaths.GymBuild, "gym.dll");
        if (!File.Exists(gymDll)) throw new FileNotFoundException($"{gymDll} is missing: build gym/Nemotron.Gym.Cli first");
        string sft = Path.Combine(work, "sft"), runDir = Path.Combine(work, "runs", "soak");
        using (var backend = new CpuBackend(1))
        using (var model = new GptModel(backend, new GptConfig(Layers: 1, Width: 32, Heads: 2, Context: 256)))
        {
            model.InitializeWeights(seed);
            Checkpoint.Save(sft, model, new ByteTokenizer());
        }
        const int tasksPerStep = 2, groupSize = 2;

        // Each start gets fresh ports: a killed silo's ports may linger, and the cluster keys may change between runs.
        string WriteConfig()
        {
            var path = Path.Combine(work, "soak.yaml");
            File.WriteAllText(path, $"""
                out: {runDir}
                init: {sft}
                device: cpu
                threads: 1
                seed: {seed}
                environments:
                  - name: math
                    settings: {"{"}difficulty: "1"{"}"}
                    train_tasks: 24
                    eval_tasks: 2
                grpo: {"{"}tasks_per_step: {tasksPerStep}, group_size: {groupSize}, dynamic_filtering: false{"}"}
                rollout: {"{"}max_new_tokens: 8{"}"}
                train: {"{"}steps: {steps}, eval_every: 5, checkpoint_every: 1, warmup_steps: 0{"}"}
                cluster: {"{"}silo_port: {Ports.Free()}, gateway_port: {Ports.Free()}{"}"}
                """);
            return path;
        }

        var rng = new Random(seed);
        var output = new System.Text.StringBuilder();
        int beforeFirstStep = 0;
        for (int k = 0; k < kills; k++)
        {
            int from;
            lock (output) from = output.Length;
            using var p = Start(gymDll, work, WriteConfig(), output);
            // One kill in five lands while the process starts (silo, store, model load). The rest land while it trains:
            // once 0-2 step lines of this attempt have been read (a loaded machine can take seconds to get there) and
            // then a random wait, so kills fall in generation, training, the store's writes and checkpoint writes. Steps
            // of this small model take milliseconds and lines arrive late, so an attempt runs a varying number of steps.
            bool duringStart = rng.NextDouble() < 0.2;
            int afterSteps = rng.Next(3);
            var delay = TimeSpan.FromSeconds(duringStart ? 0.2 + rng.NextDouble() * 2 : rng.NextDouble() * maxDelay.TotalSeconds);
            if (!duringStart && !WaitFor(p, output, from, "grpo run soak:", afterSteps, TimeSpan.FromMinutes(3)))
                throw new InvalidOperationException($"gym rl ended (exit {p.ExitCode}) or hung before training began, at kill {k + 1}\n{Tail(output)}");
            if (p.WaitForExit(delay))
                throw new InvalidOperationException($"gym rl ended by itself (exit {p.ExitCode}) before kill {k + 1}: use more steps\n{Tail(output)}");
            string text;
            lock (output) text = output.ToString(from, output.Length - from);
            int stepsSeen = text.Split('\n').Count(l => l.Contains("grpo step") && l.Contains("| reward"));
            if (stepsSeen == 0) beforeFirstStep++;
            p.Kill(entireProcessTree: true); // SIGKILL: no handler runs, nothing is flushed
            p.WaitForExit();
            log?.Invoke($"kill {k + 1}/{kills} {delay.TotalSeconds:F2} s after {(duringStart ? "the start" : afterSteps == 0 ? "training began" : $"step {afterSteps} of the attempt")} ({stepsSeen} steps in that attempt; metrics.jsonl up to step {LastStep(runDir)})");
        }

        int finalExit;
        using (var p = Start(gymDll, work, WriteConfig(), output))
        {
            if (!p.WaitForExit(TimeSpan.FromMinutes(10))) { p.Kill(true); throw new TimeoutException($"the final gym rl did not finish\n{Tail(output)}"); }
            p.WaitForExit();
            finalExit = p.ExitCode;
        }
        string all;
        lock (output) all = output.ToString();
        log?.Invoke($"final run: exit {finalExit}");
        if (finalExit != 0) log?.Invoke(Tail(output));

        // The store, read as a user's tools read it.
        await using var store = await RolloutStores.OpenAsync("sqlite:" + Path.Combine(runDir, "rollouts.db"));
        var keys = await store.ReadRolloutsAsync(new RolloutQuery("soak")).Select(r => (r.Step, r.TaskId, r.SampleIndex, r.ShapedReward, Length: r.GeneratedTokens)).ToListAsync();
        var distinct = keys.Select(k => (k.Step, k.TaskId, k.SampleIndex)).Distinct().ToList();
        int missing = 0;
        for (int s = 1; s <= steps; s++)
            missing += Math.Max(0, tasksPerStep * groupSize - distinct.Count(k => k.Step == s));
        var storeMetrics = await store.ReadStepMetricsAsync("soak").ToListAsync();
        int mismatch = 0;
        foreach (var (step, json) in storeMetrics)
        {
            // The step's metrics were computed from the rollouts it trained on: the stored ones must give the same means.
            var m = JsonNode.Parse(json)!;
            var stored = keys.Where(k => k.Step == step).ToList();
            if (stored.Count == 0 || Math.Abs(stored.Average(k => k.ShapedReward) - m["reward_mean"]!.GetValue<double>()) > 1e-9
                || Math.Abs(stored.Average(k => k.Length) - m["response_length_mean"]!.GetValue<double>()) > 1e-9) mismatch++;
        }
        var fileSteps = File.ReadLines(Path.Combine(runDir, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(o => o["stage"]!.GetValue<string>() == "grpo").Select(o => o["step"]!.GetValue<int>()).ToList();
        var runs = await store.ListRunsAsync();
        int orphansLeft = new[] { runDir, Path.Combine(runDir, "checkpoints") }.Where(Directory.Exists)
            .Sum(d => Directory.GetDirectories(d, ".*.tmp-*").Length);
        return new SoakReport(kills, beforeFirstStep, steps, keys.Count, (long)steps * tasksPerStep * groupSize, missing, keys.Count - distinct.Count,
            storeMetrics.Select(m => m.Step).Distinct().Count(), storeMetrics.Count - storeMetrics.Select(m => m.Step).Distinct().Count(),
            fileSteps.Distinct().Count(), fileSteps.Count - fileSteps.Distinct().Count(), mismatch,
            Count(all, "skipping damaged checkpoint"), Count(all, "interrupted checkpoint write"), orphansLeft,
            runs.FirstOrDefault(r => r.RunId == "soak")?.Status ?? "(none)", finalExit, clock.Elapsed);
    }

    private static Process Start(string gymDll, string work, string config, System.Text.StringBuilder output)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = work, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { gymDll, "rl", "-c", config }) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (output) output.Append(e.Data).Append('\n'); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (output) output.Append(e.Data).Append('\n'); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>Waits until the attempt has printed <paramref name="text"/> and then <paramref name="steps"/> step lines.</summary>
    private static bool WaitFor(Process p, System.Text.StringBuilder output, int from, string text, int steps, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < until)
        {
            string seen;
            lock (output) seen = output.ToString(from, output.Length - from);
            int at = seen.IndexOf(text, StringComparison.Ordinal);
            if (at >= 0 && seen[at..].Split('\n').Count(l => l.Contains("grpo step") && l.Contains("| reward")) >= steps) return true;
            if (p.HasExited) return false;
            Thread.Sleep(20);
        }
        return false;
    }

    private static int LastStep(string runDir)
    {
        var path = Path.Combine(runDir, "metrics.jsonl");
        if (!File.Exists(path)) return 0;
        int last = 0;
        foreach (var line in File.ReadLines(path))
        {
            try { if (JsonNode.Parse(line)?["step"] is JsonValue v && v.TryGetValue(out int s)) last = Math.Max(last, s); }
            catch (System.Text.Json.JsonException) { } // a line torn by the kill
        }
        return last;
    }

    private static int Count(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    private static string Tail(System.Text.StringBuilder output)
    {
        lock (output) return output.Length > 4000 ? output.ToString(output.Length - 4000, 4000) : output.ToString();
    }
}
