using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Abstractions;

/// <summary>The type of a configuration option.</summary>
public enum ConfigType
{
    /// <summary>Whole number.</summary>
    Integer,
    /// <summary>Real number.</summary>
    Number,
    /// <summary>true or false.</summary>
    Boolean,
    /// <summary>Free text.</summary>
    Text,
    /// <summary>One of <see cref="ConfigOption.Choices"/>.</summary>
    Choice,
}

/// <summary>One option an environment accepts from the run configuration.</summary>
/// <param name="Name">The key (snake_case).</param>
/// <param name="Type">Its type.</param>
/// <param name="Default">The value used when the run does not set it (as text).</param>
/// <param name="Description">What it does.</param>
/// <param name="Min">Smallest allowed value (numbers).</param>
/// <param name="Max">Largest allowed value (numbers).</param>
/// <param name="Choices">Allowed values (choices).</param>
public sealed record ConfigOption(string Name, ConfigType Type, string Default, string Description, double? Min = null, double? Max = null, IReadOnlyList<string>? Choices = null);

/// <summary>How an environment describes itself.</summary>
/// <param name="Name">Short unique name ("math").</param>
/// <param name="Version">Semantic version of the environment and its data.</param>
/// <param name="Description">One or two sentences for `gym env list`.</param>
/// <param name="Options">The configuration it accepts (its schema).</param>
/// <param name="Splits">Task splits it provides ("train", "heldout").</param>
public sealed record EnvironmentDescriptor(string Name, string Version, string Description, IReadOnlyList<ConfigOption> Options, IReadOnlyList<string> Splits);

/// <summary>Which tasks to load.</summary>
/// <param name="Split">"train", "heldout", ...</param>
/// <param name="Count">How many (0 = all that exist; procedural environments need a count).</param>
/// <param name="Seed">Seed for procedural generation and sampling: the same query gives the same tasks.</param>
public sealed record TaskQuery(string Split, int Count, int Seed);

/// <summary>A line-oriented log the host provides (it adds the environment's name and time).</summary>
public interface IEnvironmentLog
{
    /// <summary>Writes one line.</summary>
    void Write(string message);
}

/// <summary>
/// Services the host offers to environments (a sandbox to run code, a judge model, ...), looked up by
/// type. An environment asks for what it needs and must cope with null (service not configured). New
/// services are new types here; existing plugins keep working unchanged.
/// </summary>
public interface IEnvironmentServices
{
    /// <summary>The service of type <typeparamref name="T"/>, or null when the host has none.</summary>
    T? Get<T>() where T : class;
}

/// <summary>What an environment receives when it starts.</summary>
/// <param name="Settings">Its configuration, already checked against its <see cref="ConfigOption"/>s (every option present, as text).</param>
/// <param name="DataDirectory">The plugin's data folder (JSONL task files).</param>
/// <param name="Services">Host services.</param>
/// <param name="Log">The log.</param>
public sealed record EnvironmentContext(IReadOnlyDictionary<string, string> Settings, string DataDirectory, IEnvironmentServices Services, IEnvironmentLog Log)
{
    /// <summary>An integer setting.</summary>
    public int GetInt(string name) => int.Parse(Settings[name], System.Globalization.CultureInfo.InvariantCulture);
    /// <summary>A number setting.</summary>
    public double GetDouble(string name) => double.Parse(Settings[name], System.Globalization.CultureInfo.InvariantCulture);
    /// <summary>A boolean setting.</summary>
    public bool GetBool(string name) => Settings[name] == "true";
    /// <summary>A text or choice setting.</summary>
    public string GetText(string name) => Settings[name];
}

/// <summary>What the host tells an episode about itself.</summary>
/// <param name="Seed">Seed for anything random in the episode (the same seed replays the same episode).</param>
/// <param name="SampleIndex">Which of the group's rollouts this is.</param>
public sealed record EpisodeContext(int Seed, int SampleIndex);

/// <summary>
/// An environment: a C# class in a plugin assembly. It describes itself, loads or generates its tasks,
/// and opens episodes. It knows nothing of Orleans, CUDA or the trainer. Every method may be called
/// concurrently for different tasks and episodes; every call honours its cancellation token (the host
/// cancels calls that exceed their timeout).
/// </summary>
public interface IEnvironment
{
    /// <summary>Name, version, description, configuration schema.</summary>
    EnvironmentDescriptor Descriptor { get; }

    /// <summary>Called once before anything else.</summary>
    ValueTask InitializeAsync(EnvironmentContext context, CancellationToken cancellation);

    /// <summary>The tasks of a split, deterministic for a query.</summary>
    ValueTask<IReadOnlyList<TaskRecord>> LoadTasksAsync(TaskQuery query, CancellationToken cancellation);

    /// <summary>Checks a task's verifier metadata; returns the problems found (empty when valid).</summary>
    IReadOnlyList<string> ValidateTask(TaskRecord task);

    /// <summary>Opens an episode of a task.</summary>
    ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation);
}

/// <summary>
/// One episode: the opening, then an answer to each assistant turn until done, then a grade.
/// Grading must never throw on bad model output: a malformed answer is a low grade with a reason.
/// </summary>
public interface IEpisode : IAsyncDisposable
{
    /// <summary>The messages the model answers first.</summary>
    IReadOnlyList<Message> Opening { get; }

    /// <summary>The tools offered to the model.</summary>
    IReadOnlyList<ToolDefinition> Tools { get; }

    /// <summary>Takes an assistant turn; replies (tool results, feedback) or ends the episode.</summary>
    ValueTask<StepResult> StepAsync(AssistantTurn turn, CancellationToken cancellation);

    /// <summary>Grades the episode as it stands.</summary>
    ValueTask<Grade> GradeAsync(CancellationToken cancellation);
}
