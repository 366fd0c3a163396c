using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Abstractions;

/// <summary>
/// A judge model behind an OpenAI-compatible chat-completions endpoint (vLLM, NIM, TGI, `gym serve`), as the host
/// offers it to environments: <c>context.Services.Get&lt;IJudgeService&gt;()</c>, null when the run configures no
/// judge. The host's implementation bounds concurrency, retries timeouts and server errors with backoff, stops calling
/// an endpoint that keeps failing (a circuit breaker), and caches verdicts, so a replayed episode is not judged twice.
/// <para>
/// Every call returns a value: an endpoint that is down, slow or refusing gives a <see cref="JudgeCompletion"/> whose
/// <see cref="JudgeCompletion.Outcome"/> says so. The text of a completion is the judge model's output: untrusted, to be
/// parsed defensively by the environment. Implementations are safe to call concurrently.
/// </para>
/// </summary>
public interface IJudgeService
{
    /// <summary>The judge's identity (its model name at its endpoint), for evidence and cache keys.</summary>
    string Judge { get; }

    /// <summary>Asks the judge for one completion of <see cref="JudgeRequest.Messages"/>.</summary>
    ValueTask<JudgeCompletion> CompleteAsync(JudgeRequest request, CancellationToken cancellation);
}

/// <summary>One question to the judge.</summary>
/// <param name="Messages">The conversation the judge answers (a system message with its instructions, a user message with what to judge).</param>
/// <param name="Attempt">0 for the first ask; a caller that could not read a verdict asks again with 1, 2, ...: the
/// attempt varies the judge's sampling seed and is part of the cache key, so a re-ask is a new sample, not the cached one.</param>
public sealed record JudgeRequest(IReadOnlyList<Message> Messages, int Attempt = 0);

/// <summary>How a judge call ended.</summary>
public enum JudgeOutcome
{
    /// <summary>The judge answered; <see cref="JudgeCompletion.Text"/> holds its output.</summary>
    Ok,
    /// <summary>Every try timed out.</summary>
    Timeout,
    /// <summary>The endpoint could not be reached, or kept answering with server errors (5xx, 429).</summary>
    Unavailable,
    /// <summary>The endpoint refused the request (4xx other than 429: bad key, unknown model, request too large); retrying would not help.</summary>
    Refused,
    /// <summary>The circuit breaker is open: the endpoint failed repeatedly and is left alone for a while.</summary>
    CircuitOpen,
}

/// <summary>What a judge call gave.</summary>
/// <param name="Outcome">How it ended; anything but <see cref="JudgeOutcome.Ok"/> is a judge failure (mask, never score).</param>
/// <param name="Text">The judge's output when <see cref="JudgeOutcome.Ok"/>; empty otherwise.</param>
/// <param name="Error">What went wrong, for a person (null when Ok).</param>
/// <param name="Tries">HTTP requests made for this call (0 when served from the cache or refused by the open circuit).</param>
/// <param name="Cached">The answer came from the cache.</param>
public sealed record JudgeCompletion(JudgeOutcome Outcome, string Text, string? Error, int Tries, bool Cached)
{
    /// <summary>True when the judge answered.</summary>
    public bool IsOk => Outcome == JudgeOutcome.Ok;
}

/// <summary>
/// An environment whose reward depends on the whole group of rollouts of one prompt (pairwise judges compare the
/// responses with each other), implemented by the <see cref="IEnvironment"/> beside its episodes. Environments that
/// grade each episode alone do not implement it and are unchanged.
/// <para>
/// The run calls it once per group, after every member has finished and been graded by its own episode (also when
/// the members ran on different silos, or one was replayed), with the members' conversations and episode grades;
/// it returns one grade per member in the same order. A member that cannot be graded (the judge failed) gets a
/// <see cref="Grade.NotJudged"/> grade, never a 0. It must not throw for bad model output or a failing judge.
/// </para>
/// </summary>
public interface IGroupGradedEnvironment
{
    /// <summary>The final grades of a group of rollouts of <paramref name="task"/>, one per member, in order.</summary>
    ValueTask<IReadOnlyList<Grade>> GradeGroupAsync(TaskRecord task, IReadOnlyList<GroupMember> members, CancellationToken cancellation);
}
