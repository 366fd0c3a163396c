using System.Text.Json.Nodes;
using Nemotron.Gym.Model.Sampling;

namespace Nemotron.Gym.Training.Grpo;

/// <summary>
/// Chooses the tasks of each step: environments by blend weight, then tasks within an environment by
/// a Gaussian preference for estimated pass rates near μ (docs/grpo.md, "Curriculum"). A task's pass
/// rate is estimated from the groups it has had (a Beta(1,1) prior: unseen tasks sit at 0.5). Tasks
/// solved in all, or none, of their last K groups can be retired. Sampling is repeatable from the seed.
/// </summary>
public sealed class Curriculum
{
    private readonly IReadOnlyList<RlTask> _tasks;
    private readonly Dictionary<string, TaskStats> _stats = new();
    private readonly GrpoSettings _settings;
    private readonly IReadOnlyDictionary<string, double> _blend;

    /// <summary>Over <paramref name="tasks"/>, with per-environment blend weights (missing = 1).</summary>
    public Curriculum(IReadOnlyList<RlTask> tasks, GrpoSettings settings, IReadOnlyDictionary<string, double>? blend = null)
    {
        if (tasks.Count == 0) throw new ArgumentException("curriculum: no tasks");
        _tasks = tasks;
        _settings = settings;
        _blend = blend ?? new Dictionary<string, double>();
        foreach (var t in tasks) _stats[t.Id] = new TaskStats();
    }

    private sealed class TaskStats
    {
        public int Passed, Total;
        public readonly Queue<double> RecentPassFractions = new();
        public bool Retired;
    }

    /// <summary>Estimated pass rate of a task (posterior mean).</summary>
    public double PassRate(string taskId)
    {
        var s = _stats[taskId];
        return (s.Passed + 1.0) / (s.Total + 2.0);
    }

    /// <summary>Whether a task has been retired.</summary>
    public bool IsRetired(string taskId) => _stats[taskId].Retired;

    /// <summary>Tasks still in play.</summary>
    public int ActiveCount => _stats.Values.Count(s => !s.Retired);

    /// <summary>The unnormalized sampling weight of a task within its environment.</summary>
    public double Weight(string taskId)
    {
        if (_stats[taskId].Retired) return 0;
        if (!_settings.Curriculum) return 1;
        double d = PassRate(taskId) - _settings.CurriculumMu;
        return Math.Exp(-d * d / (2 * _settings.CurriculumSigma * _settings.CurriculumSigma));
    }

    /// <summary>Draws <paramref name="count"/> distinct tasks for step <paramref name="step"/>, round <paramref name="round"/>.</summary>
    public List<RlTask> Sample(int count, int seed, int step, int round, ISet<string>? exclude = null)
    {
        var rng = new Random(Sampler.StreamSeed(seed, step * 64 + round));
        var available = _tasks.Where(t => !_stats[t.Id].Retired && (exclude == null || !exclude.Contains(t.Id))).ToList();
        var picked = new List<RlTask>();
        var byEnv = available.GroupBy(t => t.Environment).ToDictionary(g => g.Key, g => g.ToList());
        while (picked.Count < count && byEnv.Count > 0)
        {
            // Environment by blend weight, then task by curriculum weight.
            var envs = byEnv.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
            var envWeights = envs.Select(e => _blend.TryGetValue(e, out var w) ? w : 1.0).ToArray();
            string env = envs[Pick(rng, envWeights)];
            var pool = byEnv[env];
            var task = pool[Pick(rng, pool.Select(t => Weight(t.Id) + 1e-9).ToArray())];
            picked.Add(task);
            pool.Remove(task);
            if (pool.Count == 0) byEnv.Remove(env);
        }
        return picked;
    }

    private static int Pick(Random rng, double[] weights)
    {
        double total = weights.Sum();
        if (total <= 0) return rng.Next(weights.Length);
        double u = rng.NextDouble() * total;
        for (int i = 0; i < weights.Length; i++)
        {
            u -= weights[i];
            if (u < 0) return i;
        }
        return weights.Length - 1;
    }

    /// <summary>Records a graded group: updates the task's pass rate and retires it when warranted.</summary>
    public void Record(string taskId, int passed, int total)
    {
        var s = _stats[taskId];
        s.Passed += passed;
        s.Total += total;
        if (_settings.RetireAfter <= 0) return;
        s.RecentPassFractions.Enqueue((double)passed / total);
        while (s.RecentPassFractions.Count > _settings.RetireAfter) s.RecentPassFractions.Dequeue();
        if (s.RecentPassFractions.Count == _settings.RetireAfter && (s.RecentPassFractions.All(f => f == 1.0) || s.RecentPassFractions.All(f => f == 0.0)))
            s.Retired = true;
    }

    /// <summary>State for checkpoints.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject();
        foreach (var (id, s) in _stats)
            if (s.Total > 0 || s.Retired)
                o[id] = new JsonObject { ["passed"] = s.Passed, ["total"] = s.Total, ["retired"] = s.Retired, ["recent"] = new JsonArray(s.RecentPassFractions.Select(f => (JsonNode)f).ToArray()) };
        return o;
    }

    /// <summary>Restores state saved by <see cref="ToJson"/> (tasks no longer present are ignored).</summary>
    public void Load(JsonObject state)
    {
        foreach (var (id, node) in state)
        {
            if (node is not JsonObject o || !_stats.TryGetValue(id, out var s)) continue;
            s.Passed = o["passed"]!.GetValue<int>();
            s.Total = o["total"]!.GetValue<int>();
            s.Retired = o["retired"]!.GetValue<bool>();
            s.RecentPassFractions.Clear();
            foreach (var f in o["recent"] as JsonArray ?? []) s.RecentPassFractions.Enqueue(f!.GetValue<double>());
        }
    }
}
