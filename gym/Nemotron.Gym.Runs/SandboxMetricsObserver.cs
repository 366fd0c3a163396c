using System.Text.Json.Nodes;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Sandbox;
using Nemotron.Gym.Training.Grpo;

namespace Nemotron.Gym.Runs;

/// <summary>
/// Puts the silo's sandbox pool beside each RL step: a line in the run's log (through the inner observer) and a JSON
/// line in <c>sandbox.jsonl</c> of the run folder (counters since the silo started: sandboxes alive, queue, queue wait,
/// run time, outcomes by kind). Everything else passes through to <paramref name="inner"/>.
/// </summary>
public sealed class SandboxMetricsObserver(IRlObserver inner, SiloSandbox sandbox, string runFolder) : IRlObserver
{
    /// <summary>The file the step records go to.</summary>
    public string MetricsFile { get; } = Path.Combine(runFolder, "sandbox.jsonl");

    /// <inheritdoc />
    public void OnStep(GrpoStepMetrics metrics, int totalSteps)
    {
        inner.OnStep(metrics, totalSteps);
        if (sandbox.Metrics is not { } m) return;
        inner.OnMessage($"sandbox after step {metrics.Step}: {SiloSandbox.Describe(m)}");
        Directory.CreateDirectory(runFolder);
        File.AppendAllText(MetricsFile, Record(metrics.Step, m).ToJsonString() + "\n");
    }

    /// <summary>The JSON record of one step.</summary>
    public static JsonObject Record(int step, SandboxAdmissionMetrics m)
    {
        long finished = m.Outcomes.Values.Sum();
        var outcomes = new JsonObject();
        foreach (var (outcome, count) in m.Outcomes.OrderBy(kv => kv.Key)) outcomes[outcome.ToString()] = count;
        return new JsonObject
        {
            ["stage"] = "sandbox", ["step"] = step, ["alive"] = m.Running, ["queued"] = m.Waiting, ["admitted"] = m.Admitted, ["refused"] = m.Refused,
            ["queue_wait_mean_ms"] = m.Admitted > 0 ? m.QueueWaitTotal.TotalMilliseconds / m.Admitted : 0,
            ["queue_wait_max_ms"] = m.QueueWaitMax.TotalMilliseconds,
            ["run_time_mean_ms"] = finished > 0 ? m.RunTimeTotal.TotalMilliseconds / finished : 0,
            ["outcomes"] = outcomes,
        };
    }

    /// <inheritdoc />
    public void OnEval(int step, IReadOnlyDictionary<string, double> scores) => inner.OnEval(step, scores);

    /// <inheritdoc />
    public void OnMessage(string message) => inner.OnMessage(message);
}
