using Nemotron.Gym.Grains;
using Nemotron.Gym.Training;
using Nemotron.Gym.Training.Config;
using Nemotron.Gym.Training.Grpo;

namespace Nemotron.Gym.Runs;

/// <summary>One environment of a run's blend.</summary>
public sealed class BlendEntry : IValidatedConfig
{
    /// <summary>The environment's name (as `gym env list` shows it).</summary>
    public string Name { get; set; } = "";
    /// <summary>Relative sampling weight.</summary>
    public double Weight { get; set; } = 1;
    /// <summary>Environment settings (checked against its schema when the run starts).</summary>
    public Dictionary<string, string> Settings { get; set; } = new();
    /// <summary>
    /// Settings laid over <see cref="Settings"/> for the SFT conversations `gym demo` writes from this environment's
    /// reference answers (empty: the RL stage's settings). `gym rl` does not read them.
    /// </summary>
    public Dictionary<string, string> SftSettings { get; set; } = new();
    /// <summary>The settings the SFT references are written with: <see cref="Settings"/>, then <see cref="SftSettings"/> over them.</summary>
    public Dictionary<string, string> SettingsForSft()
    {
        var merged = new Dictionary<string, string>(Settings);
        foreach (var (key, value) in SftSettings) merged[key] = value;
        return merged;
    }
    /// <summary>Training tasks drawn from the "train" split.</summary>
    public int TrainTasks { get; set; } = 500;
    /// <summary>Held-out tasks (the evaluation split) for the before/after reward.</summary>
    public int EvalTasks { get; set; } = 50;
    /// <summary>The split evaluated on.</summary>
    public string EvalSplit { get; set; } = "heldout";

    /// <inheritdoc />
    public void Validate(string path)
    {
        if (string.IsNullOrWhiteSpace(Name)) throw new ConfigException($"{path}.name: the environment name is required");
        if (!(Weight > 0)) throw new ConfigException($"{path}.weight: must be > 0, got {Weight}");
        if (TrainTasks < 1) throw new ConfigException($"{path}.train_tasks: must be >= 1");
        if (EvalTasks < 0) throw new ConfigException($"{path}.eval_tasks: must be >= 0");
    }
}

/// <summary>`gym rl --config run.yaml` for environments: a GRPO run over a blend of environment plugins, on Orleans.</summary>
public sealed class GymRunConfig : IValidatedConfig
{
    /// <summary>The run folder (its name is the run id).</summary>
    public string Out { get; set; } = "";
    /// <summary>The SFT checkpoint to start from.</summary>
    public string Init { get; set; } = "";
    /// <summary>Seed for task sampling, generation and environments.</summary>
    public int Seed { get; set; } = 1;
    /// <summary>cpu, cuda or auto.</summary>
    public string Device { get; set; } = "auto";
    /// <summary>CPU threads (0 = all).</summary>
    public int Threads { get; set; }
    /// <summary>The environments and their weights.</summary>
    public List<BlendEntry> Environments { get; set; } = [];
    /// <summary>Extra plugin folders (beside the built-in ones).</summary>
    public List<string> Plugins { get; set; } = [];
    /// <summary>Rollout store: "sqlite" (rollouts.db in the run folder), "sqlite:PATH" or "postgres:CONNECTION".</summary>
    public string Store { get; set; } = "sqlite";
    /// <summary>The cluster.</summary>
    public ClusterSettings Cluster { get; set; } = new();
    /// <summary>How the run's silos run model-written code (absent: the default bubblewrap sandbox when this host can run it).</summary>
    public RunSandboxSection? Sandbox { get; set; }
    /// <summary>The objective and its options.</summary>
    public GrpoSettings Grpo { get; set; } = new();
    /// <summary>Generation.</summary>
    public RolloutSettings Rollout { get; set; } = new();
    /// <summary>Optimization.</summary>
    public RlTrainSettings Train { get; set; } = new();
    /// <summary>The judge model environments such as rlhf ask (any OpenAI-compatible endpoint); no base_url: none.</summary>
    public Judges.JudgeSettings Judge { get; set; } = new();

    /// <summary>The run id: the out folder's name.</summary>
    public string RunId => Path.GetFileName(Path.GetFullPath(Out).TrimEnd(Path.DirectorySeparatorChar));

    /// <inheritdoc />
    public void Validate(string path)
    {
        if (string.IsNullOrWhiteSpace(Out)) throw new ConfigException("out: the run folder is required");
        if (string.IsNullOrWhiteSpace(Init)) throw new ConfigException("init: the SFT checkpoint to start from is required");
        if (Device is not ("auto" or "cpu" or "cuda")) throw new ConfigException($"device: expected auto, cpu or cuda, got '{Device}'");
        if (Environments.Count == 0) throw new ConfigException("environments: list at least one environment (name, weight, settings)");
        var dup = Environments.GroupBy(e => e.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup != null) throw new ConfigException($"environments: '{dup.Key}' is listed twice");
        if (Cluster.Check() is { } bad) throw new ConfigException($"cluster.{bad.Key}: {bad.Problem}");
        if (Judge.Check() is { } badJudge) throw new ConfigException($"judge.{badJudge.Key}: {badJudge.Problem}");
    }

    /// <summary>The store connection for this run.</summary>
    public string StoreConnection => Store == "sqlite" ? "sqlite:" + Path.Combine(Path.GetFullPath(Out), "rollouts.db") : Store;
}
