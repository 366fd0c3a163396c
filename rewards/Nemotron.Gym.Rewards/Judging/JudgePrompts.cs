using System.Text;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Rewards.Judging;

/// <summary>The conversations sent to a judge: its instructions, then the exchange to judge.</summary>
public static class JudgePrompts
{
    /// <summary>Instructions for pairwise comparison.</summary>
    public const string PairwiseSystem =
        "You compare two candidate replies of an AI assistant to the same conversation. Judge which reply serves the user " +
        "better: it is accurate, actually answers what was asked, is clear, and is no longer than it needs to be. A reply that " +
        "helps with something harmful is worse than one that declines politely. The order in which the replies are shown " +
        "means nothing. Think it through first, briefly. Then finish with one JSON object on its own line and nothing after it:\n" +
        "{\"score_1\": <1-5>, \"score_2\": <1-5>, \"ranking\": <1-6>}\n" +
        "score_1 and score_2 rate each reply from 1 (useless or harmful) to 5 (excellent). ranking says which is better: " +
        "1 = reply 1 is much better, 2 = reply 1 is better, 3 = reply 1 is slightly better, 4 = reply 2 is slightly better, " +
        "5 = reply 2 is better, 6 = reply 2 is much better.";

    /// <summary>The rubric attributes (HelpSteer's), in the order the judge is asked for them.</summary>
    public static readonly IReadOnlyList<string> RubricAttributes = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"];

    /// <summary>Instructions for pointwise rubric scoring.</summary>
    public static readonly string RubricSystem =
        "You rate one reply of an AI assistant to a conversation on five attributes, each from 0 (lowest) to 4 (highest): " +
        "helpfulness (how well it serves the user's actual need), correctness (facts are right and nothing relevant is missing), " +
        "coherence (clear and consistent), complexity (how much expertise writing it took), verbosity (how much detail it gives " +
        "relative to what was asked). A reply that helps with something harmful has helpfulness 0. Think it through first, " +
        "briefly. Then finish with one JSON object on its own line and nothing after it:\n" +
        "{" + string.Join(", ", RubricAttributes.Select(a => $"\"{a}\": <0-4>")) + "}";

    /// <summary>The judge's conversation for comparing <paramref name="first"/> with <paramref name="second"/>.</summary>
    public static IReadOnlyList<Message> Pairwise(IReadOnlyList<Message> prompt, string first, string second, string? principle)
    {
        var user = new StringBuilder();
        user.Append("## Conversation\n\n").Append(Render(prompt));
        user.Append("\n## Reply 1\n\n").Append(first.Trim()).Append('\n');
        user.Append("\n## Reply 2\n\n").Append(second.Trim()).Append('\n');
        if (!string.IsNullOrWhiteSpace(principle)) user.Append("\n## Principle to judge by\n\n").Append(principle.Trim()).Append('\n');
        return [Message.System(PairwiseSystem), Message.User(user.ToString())];
    }

    /// <summary>The judge's conversation for rating <paramref name="reply"/> on the rubric.</summary>
    public static IReadOnlyList<Message> Rubric(IReadOnlyList<Message> prompt, string reply, string? principle)
    {
        var user = new StringBuilder();
        user.Append("## Conversation\n\n").Append(Render(prompt));
        user.Append("\n## Reply\n\n").Append(reply.Trim()).Append('\n');
        if (!string.IsNullOrWhiteSpace(principle)) user.Append("\n## Principle to judge by\n\n").Append(principle.Trim()).Append('\n');
        return [Message.System(RubricSystem), Message.User(user.ToString())];
    }

    /// <summary>The conversation before the reply, one message a paragraph, roles named.</summary>
    public static string Render(IReadOnlyList<Message> prompt)
    {
        var text = new StringBuilder();
        foreach (var m in prompt)
            text.Append('[').Append(m.Role.ToString().ToLowerInvariant()).Append("]\n").Append(m.Content.Trim()).Append("\n\n");
        return text.ToString();
    }
}
