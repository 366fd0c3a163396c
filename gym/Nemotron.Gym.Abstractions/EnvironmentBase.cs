using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Abstractions;

/// <summary>
/// A convenient base for environments whose tasks live in JSONL files: data/&lt;split&gt;.jsonl in the plugin
/// folder. Override <see cref="LoadTasksAsync"/> to generate tasks instead.
/// </summary>
public abstract class EnvironmentBase : IEnvironment
{
    /// <summary>Set by <see cref="InitializeAsync"/>.</summary>
    protected EnvironmentContext Context { get; private set; } = null!;

    /// <inheritdoc />
    public abstract EnvironmentDescriptor Descriptor { get; }

    /// <inheritdoc />
    public virtual ValueTask InitializeAsync(EnvironmentContext context, CancellationToken cancellation)
    {
        Context = context;
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public virtual async ValueTask<IReadOnlyList<TaskRecord>> LoadTasksAsync(TaskQuery query, CancellationToken cancellation)
    {
        var path = Path.Combine(Context.DataDirectory, query.Split + ".jsonl");
        var tasks = await ReadJsonlAsync(path, cancellation);
        if (query.Count <= 0 || query.Count >= tasks.Count) return tasks;
        // A seeded sample, in file order, so the same query always gives the same tasks.
        var rng = new Random(query.Seed);
        var picked = Enumerable.Range(0, tasks.Count).OrderBy(_ => rng.Next()).Take(query.Count).Order();
        return picked.Select(i => tasks[i]).ToList();
    }

    /// <summary>Reads a task file; errors name the file and line.</summary>
    public static async Task<IReadOnlyList<TaskRecord>> ReadJsonlAsync(string path, CancellationToken cancellation)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: task file not found", path);
        var list = new List<TaskRecord>();
        int lineNo = 0;
        foreach (var line in await File.ReadAllLinesAsync(path, cancellation))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            list.Add(TaskRecord.Parse(line, $"{path}:{lineNo}"));
        }
        return list;
    }

    /// <inheritdoc />
    public abstract IReadOnlyList<string> ValidateTask(TaskRecord task);

    /// <inheritdoc />
    public abstract ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation);
}

/// <summary>
/// An episode of one assistant turn: the model answers the opening, the episode ends, and
/// <see cref="Grade"/> judges the answer. Most verifiable tasks are like this.
/// </summary>
public abstract class SingleTurnEpisode(TaskRecord task) : IEpisode
{
    /// <summary>The task.</summary>
    protected TaskRecord Task { get; } = task;

    /// <summary>The answer, once given.</summary>
    protected AssistantTurn? Answer { get; private set; }

    /// <inheritdoc />
    public virtual IReadOnlyList<Message> Opening => Task.Input;

    /// <inheritdoc />
    public virtual IReadOnlyList<ToolDefinition> Tools => Task.Tools;

    /// <inheritdoc />
    public ValueTask<StepResult> StepAsync(AssistantTurn turn, CancellationToken cancellation)
    {
        Answer = turn;
        return ValueTask.FromResult(StepResult.End);
    }

    /// <inheritdoc />
    public ValueTask<Grade> GradeAsync(CancellationToken cancellation)
    {
        if (Answer == null) return ValueTask.FromResult(Conversation.Grade.Of(0, "no answer was given"));
        if (Answer.Truncated)
            return ValueTask.FromResult(new Grade(0, new Dictionary<string, double> { ["truncated"] = 1 }, "the answer was cut off at the length limit", new Dictionary<string, string> { ["answer_tail"] = Tail(Answer.Text) }));
        return ValueTask.FromResult(Grade(Answer));
    }

    /// <summary>Judges a complete answer. Must not throw on malformed output.</summary>
    protected abstract Grade Grade(AssistantTurn answer);

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    /// <summary>The last characters of a long text, for evidence.</summary>
    protected static string Tail(string text, int max = 200) => text.Length <= max ? text : "…" + text[^max..];
}
