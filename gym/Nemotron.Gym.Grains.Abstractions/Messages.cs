using MessagePack;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Grains;

// The messages between the trainer and the grains. They are MessagePack contracts that Orleans carries with
// MessagePackGrainCodec; the conversation types inside them (Message, ToolDefinition, AssistantTurn, Grade) are the
// contract's own, carried by ConversationFormatters.

/// <summary>
/// A set of tasks of one environment: which environment, with which settings, which split, how many and from
/// which seed. Environments are deterministic given these, so any silo can rebuild the same tasks.
/// </summary>
[MessagePackObject]
public sealed record TaskSetSpec(
    [property: Key(0)] string Environment,
    [property: Key(1)] IReadOnlyDictionary<string, string> Settings,
    [property: Key(2)] string Split,
    [property: Key(3)] int Count,
    [property: Key(4)] int Seed)
{
    /// <summary>A stable text key for caches.</summary>
    [IgnoreMember]
    public string CacheKey => $"{Environment}|{SettingsKey(Settings)}|{Split}|{Count}|{Seed}";

    /// <summary>Settings as stable text (sorted by key), for cache keys.</summary>
    public static string SettingsKey(IReadOnlyDictionary<string, string> settings) =>
        string.Join(",", settings.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));
}

/// <summary>What an episode grain is asked to run: a task of a task set, sample <see cref="SampleIndex"/> of its group.</summary>
[MessagePackObject]
public sealed record EpisodeSpec(
    [property: Key(0)] TaskSetSpec TaskSet,
    [property: Key(1)] string TaskId,
    [property: Key(2)] int SampleIndex,
    [property: Key(3)] int Seed);

/// <summary>The conversation the model answers first.</summary>
[MessagePackObject]
public sealed record EpisodeOpening(
    [property: Key(0)] IReadOnlyList<Message> Messages,
    [property: Key(1)] IReadOnlyList<ToolDefinition> Tools);

/// <summary>The environment's answer to an assistant turn: done, or messages that continue the episode.</summary>
[MessagePackObject]
public sealed record EpisodeReplyMessage(
    [property: Key(0)] bool Done,
    [property: Key(1)] IReadOnlyList<Message> Reply);

/// <summary>An episode's grade and the seconds its environment spent (opening, steps, grading).</summary>
[MessagePackObject]
public sealed record EpisodeGrade(
    [property: Key(0)] Grade Grade,
    [property: Key(1)] double EnvironmentSeconds);

/// <summary>An environment as a silo found it.</summary>
[MessagePackObject]
public sealed record EnvironmentInfo(
    [property: Key(0)] string Name,
    [property: Key(1)] string Version,
    [property: Key(2)] string Description,
    [property: Key(3)] IReadOnlyList<string> Splits);

/// <summary>The lifecycle of an episode grain.</summary>
public enum EpisodeState { Created, Opened, AwaitingModel, Stepping, AwaitingGrade, Grading, Done, Failed, TimedOut }

/// <summary>The lifecycle of a run.</summary>
public enum RunStatus { Created, Running, Paused, Completed, Failed }

/// <summary>A run as its grain holds it.</summary>
[MessagePackObject]
public sealed record RunInfo(
    [property: Key(0)] string RunId,
    [property: Key(1)] RunStatus Status,
    [property: Key(2)] int Step,
    [property: Key(3)] int TotalSteps,
    [property: Key(4)] string? LastCheckpoint,
    [property: Key(5)] string ConfigYaml,
    [property: Key(6)] string? Error,
    [property: Key(7)] DateTimeOffset Created,
    [property: Key(8)] DateTimeOffset Updated);
