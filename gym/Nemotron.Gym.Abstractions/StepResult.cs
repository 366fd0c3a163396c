using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Abstractions;

/// <summary>The environment's answer to an assistant turn.</summary>
public sealed record StepResult
{
    private StepResult(bool done, IReadOnlyList<Message> reply)
    {
        Done = done;
        Reply = reply;
    }

    /// <summary>True when the episode is over and should be graded.</summary>
    public bool Done { get; }

    /// <summary>The environment's turn(s) when the episode goes on: tool results, feedback or a follow-up question.</summary>
    public IReadOnlyList<Message> Reply { get; }

    /// <summary>The episode is over.</summary>
    public static StepResult End { get; } = new(true, []);

    /// <summary>The episode goes on with these messages (tool or user turns).</summary>
    public static StepResult Continue(params Message[] reply)
    {
        if (reply.Length == 0) throw new ArgumentException("a continuing step needs at least one message");
        foreach (var m in reply)
            if (m.Role is not (Role.Tool or Role.User))
                throw new ArgumentException($"an environment replies with tool or user messages, not {m.Role}");
        return new StepResult(false, reply);
    }
}
