using System.Globalization;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Rewards.Judging;

/// <summary>Which pairs of a group the pairwise judge compares.</summary>
public enum Pairing
{
    /// <summary>Each response with the next, the last with the first (n comparisons; one for a pair).</summary>
    Circular,
    /// <summary>Every pair (n(n−1)/2 comparisons).</summary>
    AllPairs,
}

/// <summary>What a comparison that got no verdict counts for.</summary>
public enum JudgeFailurePolicy
{
    /// <summary>Nothing: a response left with no verdict at all is masked (the trainer skips it), never scored.</summary>
    Mask,
    /// <summary>A neutral 3 for both responses, as if the judge had called it even.</summary>
    Neutral,
}

/// <summary>How a group is judged.</summary>
/// <param name="Pairing">Which pairs are compared (pairwise mode).</param>
/// <param name="Swap">Judge every pair in both orders too, so a judge that favours a position cancels out (pairwise mode).</param>
/// <param name="ParseRetries">Asks after the first when the judge's answer holds no readable verdict.</param>
/// <param name="OnFailure">What a comparison without a verdict counts for.</param>
/// <param name="AnswerLengthPenalty">λ_answer: reward −= λ·(answer length / the group's mean − 1).</param>
/// <param name="ReasoningLengthPenalty">λ_reasoning: the same for the reasoning.</param>
/// <param name="RubricWeights">Pointwise mode: the weight of each rubric attribute in the reward.</param>
public sealed record GroupJudgingSettings(
    Pairing Pairing = Pairing.Circular,
    bool Swap = true,
    int ParseRetries = 2,
    JudgeFailurePolicy OnFailure = JudgeFailurePolicy.Mask,
    double AnswerLengthPenalty = 0,
    double ReasoningLengthPenalty = 0,
    IReadOnlyDictionary<string, double>? RubricWeights = null)
{
    /// <summary>Helpfulness only, HelpSteer's headline attribute.</summary>
    public static IReadOnlyDictionary<string, double> DefaultRubricWeights { get; } = new Dictionary<string, double> { ["helpfulness"] = 1 };

    /// <summary>Parses "helpfulness=1,correctness=0.5" (attributes of <see cref="JudgePrompts.RubricAttributes"/>, weights ≥ 0, not all 0).</summary>
    public static IReadOnlyDictionary<string, double> ParseRubricWeights(string text)
    {
        var weights = new Dictionary<string, double>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = part.Split('=', 2, StringSplitOptions.TrimEntries);
            if (kv.Length != 2 || !JudgePrompts.RubricAttributes.Contains(kv[0]))
                throw new ArgumentException($"rubric_weights: '{part}' is not attribute=weight with an attribute of {string.Join(", ", JudgePrompts.RubricAttributes)}");
            if (!double.TryParse(kv[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double w) || !(w >= 0))
                throw new ArgumentException($"rubric_weights: the weight of {kv[0]} must be a number >= 0, got '{kv[1]}'");
            weights[kv[0]] = w;
        }
        if (weights.Values.Sum() <= 0) throw new ArgumentException($"rubric_weights: give at least one attribute a positive weight (got '{text}')");
        return weights;
    }
}

/// <summary>
/// Grades a group of responses to one prompt with a generative judge (after NeMo-Gym's genrm_compare).
/// <para>
/// Pairwise: the pairs the pairing names are shown to the judge (in both orders with swap); each verdict gives both
/// responses a score 1–5. Equal scores are split by the ranking: the response it prefers gets +0.5 and the other −0.5
/// for that comparison. A response's score is the mean over its comparisons; its reward is (score − 1)/4, so 0–1 like
/// the verifiable environments (a tie split at the extremes can reach −1/8 or 9/8). Pointwise: each response is rated on
/// the rubric (0–4 each) and its reward is Σ wₖ·sₖ / (4·Σ wₖ).
/// </para>
/// <para>
/// Length control, relative to the group: with ℓᵢ a response's answer length in characters and ℓ̄ the mean over the
/// judged responses, rewardᵢ −= λ_answer·(ℓᵢ/ℓ̄ − 1), and the same for the reasoning with λ_reasoning. The penalties sum
/// to zero over the group, so they move reward from long responses to short ones without changing the group's mean.
/// </para>
/// <para>
/// A member that is already masked or failed in its environment keeps its own grade; the others are judged (a response
/// cut off at the length limit too: the trainer's truncation policy applies to it afterwards). A judge failure (unreachable, circuit open, timeouts, a verdict still unreadable after the retries)
/// is never a score: under <see cref="JudgeFailurePolicy.Mask"/> a response left with no verdict is masked with the
/// reasons. Every comparison's scores and the judge's reasoning go into the evidence of both responses.
/// </para>
/// </summary>
public static class GroupJudging
{
    /// <summary>The most characters of one judge answer kept in the evidence.</summary>
    public const int EvidenceChars = 2000;

    private const double TieSplit = 0.5;

    /// <summary>One comparison's outcome for one response: the score it got and the line the evidence shows.</summary>
    private sealed record Scored(double? Score, string Evidence, bool ParseFailure, bool JudgeFailure, string? Failure);

    private sealed class Candidate(int member, IReadOnlyList<Message> prompt, string answer, string reasoning)
    {
        public int Member { get; } = member;
        public IReadOnlyList<Message> Prompt { get; } = prompt;
        public string Answer { get; } = answer;
        public string Reasoning { get; } = reasoning;
        public List<(string Key, Scored Result)> Results { get; } = [];
    }

    /// <summary>
    /// Pairwise grades of <paramref name="members"/> (pairwise=true) or rubric grades (pairwise=false); one grade per
    /// member, in order. Never throws for model output or judge failures; <paramref name="judge"/> null masks every
    /// judged member ("no judge configured").
    /// </summary>
    public static async Task<IReadOnlyList<Grade>> GradeAsync(IJudgeService? judge, bool pairwise, IReadOnlyList<GroupMember> members, string? principle,
        GroupJudgingSettings settings, CancellationToken cancellation)
    {
        var grades = members.Select(m => m.Grade).ToArray();
        var candidates = new List<Candidate>();
        for (int i = 0; i < members.Count; i++)
            if (Judgeable(members[i]) is { } c) candidates.Add(new Candidate(i, c.Prompt, c.Answer, c.Reasoning));
        if (candidates.Count == 0) return grades;
        if (judge == null)
        {
            foreach (var c in candidates) grades[c.Member] = Grade.NotJudged("no judge is configured on this silo (set judge.base_url in the run config)");
            return grades;
        }
        if (pairwise && candidates.Count < 2)
        {
            foreach (var c in candidates) grades[c.Member] = Grade.NotJudged("only one complete response in the group: nothing to compare it with");
            return grades;
        }

        var stats = new GroupStats();
        if (pairwise) await ComparePairsAsync(judge, candidates, principle, settings, stats, cancellation);
        else await RateEachAsync(judge, candidates, principle, settings, cancellation);

        // Scores first, then the group-relative length penalty over the responses that have one.
        var scored = new List<(Candidate C, double Score, double Reward)>();
        foreach (var c in candidates)
        {
            var scores = c.Results.Select(r => r.Result.Score).OfType<double>().ToList();
            if (scores.Count == 0)
            {
                var why = string.Join("; ", c.Results.Select(r => r.Result.Failure).OfType<string>().Distinct().Take(3));
                string reason = $"the judge gave no verdict for this response: {why}";
                grades[c.Member] = Grade.NotJudged(reason, Counts(c, new Dictionary<string, double>()), Evidence(judge, c, stats));
                continue;
            }
            double score = scores.Average();
            scored.Add((c, score, pairwise ? (score - 1) / 4 : score));
        }
        var penalties = LengthPenalties(scored.Select(s => s.C).ToList(), settings);
        for (int k = 0; k < scored.Count; k++)
        {
            var (c, score, reward) = scored[k];
            var (answerPenalty, reasoningPenalty) = penalties[k];
            var components = Counts(c, new Dictionary<string, double>
            {
                [pairwise ? "judge_score" : "rubric_score"] = score,
                ["length_penalty_answer"] = answerPenalty,
                ["length_penalty_reasoning"] = reasoningPenalty,
            });
            if (pairwise && settings.Swap) components["position_disagreement_rate"] = stats.DisagreementRate;
            double final = reward - answerPenalty - reasoningPenalty;
            string how = pairwise ? $"mean pairwise score {F(score)} over {c.Results.Count} comparison(s)" : $"rubric score {F(score)}";
            string reason = $"{how}, reward {F(reward)}" + (answerPenalty != 0 || reasoningPenalty != 0 ? $" minus length penalty {F(answerPenalty + reasoningPenalty)} = {F(final)}" : "");
            grades[c.Member] = new Grade(final, components, reason, Evidence(judge, c, stats));
        }
        return grades;
    }

    /// <summary>Adds the comparison counts of a response (asked, with a verdict, unreadable, judge failed) to its components.</summary>
    private static Dictionary<string, double> Counts(Candidate c, Dictionary<string, double> components)
    {
        components["judge_comparisons"] = c.Results.Count;
        components["judge_verdicts"] = c.Results.Count(r => r.Result.Score != null && r.Result.Failure == null);
        components["judge_parse_failures"] = c.Results.Count(r => r.Result.ParseFailure);
        components["judge_failures"] = c.Results.Count(r => r.Result.JudgeFailure);
        return components;
    }

    /// <summary>The prompt, answer and reasoning of a member that can be judged, or null.</summary>
    private static (IReadOnlyList<Message> Prompt, string Answer, string Reasoning)? Judgeable(GroupMember m)
    {
        // A cut-off response is judged like the others (the judge sees it cut off); the trainer's truncation policy applies after.
        if (m.Grade.Masked) return null;
        if (m.Grade.Components.ContainsKey("environment_error") || m.Grade.Components.ContainsKey("grader_error")) return null;
        int first = -1;
        for (int i = 0; i < m.Conversation.Count && first < 0; i++) if (m.Conversation[i].Role == Role.Assistant) first = i;
        if (first <= 0) return null;
        var last = m.Conversation.Last(x => x.Role == Role.Assistant);
        return (m.Conversation.Take(first).ToList(), last.Content, last.Reasoning ?? "");
    }

    private sealed class GroupStats
    {
        public int BothOrders, Disagreements;
        public double DisagreementRate => BothOrders > 0 ? (double)Disagreements / BothOrders : 0;
    }

    /// <summary>The pairs to compare among n candidates.</summary>
    public static IReadOnlyList<(int A, int B)> Pairs(int n, Pairing pairing)
    {
        if (n < 2) return [];
        if (n == 2) return [(0, 1)];
        return pairing == Pairing.Circular
            ? Enumerable.Range(0, n).Select(i => (i, (i + 1) % n)).ToList()
            : Enumerable.Range(0, n).SelectMany(i => Enumerable.Range(i + 1, n - i - 1).Select(j => (i, j))).ToList();
    }

    private static async Task ComparePairsAsync(IJudgeService judge, List<Candidate> candidates, string? principle, GroupJudgingSettings settings,
        GroupStats stats, CancellationToken cancellation)
    {
        var pairs = Pairs(candidates.Count, settings.Pairing);
        // Every comparison of the group goes to the pool at once; the pool bounds how many reach the endpoint.
        var jobs = pairs.SelectMany(p => settings.Swap ? new[] { (p.A, p.B, Swapped: false), (p.B, p.A, Swapped: true) } : [(p.A, p.B, Swapped: false)])
            .Select(async j =>
            {
                var (first, second) = (candidates[j.Item1], candidates[j.Item2]);
                var messages = JudgePrompts.Pairwise(first.Prompt, first.Answer, second.Answer, principle);
                var (verdict, text, failure, parseFailures, judgeFailed) = await AskAsync(judge, messages, VerdictParser.Pairwise, settings.ParseRetries, cancellation);
                return (First: j.Item1, Second: j.Item2, j.Swapped, Verdict: verdict, Text: text, Failure: failure, ParseFailures: parseFailures, JudgeFailed: judgeFailed);
            }).ToList();
        var done = await Task.WhenAll(jobs);
        foreach (var d in done)
        {
            var (first, second) = (candidates[d.First], candidates[d.Second]);
            double? s1 = null, s2 = null;
            string shown;
            if (d.Verdict is { } v)
            {
                (double a, double b) = (v.Score1, v.Score2);
                if (a == b) (a, b) = v.RankingPrefersFirst ? (a + TieSplit, b - TieSplit) : (a - TieSplit, b + TieSplit);
                (s1, s2) = (a, b);
                shown = $"score_1 {F(v.Score1)}, score_2 {F(v.Score2)}, ranking {v.Ranking}";
            }
            else if (settings.OnFailure == JudgeFailurePolicy.Neutral)
            {
                (s1, s2) = (3, 3);
                shown = $"no verdict ({d.Failure}); counted as 3 each";
            }
            else shown = $"no verdict ({d.Failure})";
            string judgeSaid = Clip(d.Text);
            bool parseFailure = d.ParseFailures > 0 && d.Verdict == null && !d.JudgeFailed;
            string? failure = d.Verdict == null ? d.Failure : null;
            string line = $"#{first.Member} shown first vs #{second.Member}: {shown}\n{judgeSaid}";
            first.Results.Add(($"judge_vs_{second.Member}_shown_first", new Scored(s1, line, parseFailure, d.JudgeFailed, failure)));
            second.Results.Add(($"judge_vs_{first.Member}_shown_second", new Scored(s2, line, parseFailure, d.JudgeFailed, failure)));
        }
        // Position agreement: where a pair has verdicts in both orders, do they prefer the same response?
        if (settings.Swap)
            foreach (var (a, b) in pairs)
            {
                var forward = done.FirstOrDefault(d => d.First == a && d.Second == b && d.Verdict != null).Verdict;
                var backward = done.FirstOrDefault(d => d.First == b && d.Second == a && d.Verdict != null).Verdict;
                if (forward == null || backward == null) continue;
                stats.BothOrders++;
                // Forward: true when it prefers a; backward: true when it prefers a (a is shown second there).
                bool forwardA = Prefers(forward), backwardA = !Prefers(backward);
                if (forwardA != backwardA) stats.Disagreements++;
            }
    }

    /// <summary>Whether a verdict prefers the response shown first (scores, then the ranking on a tie).</summary>
    private static bool Prefers(PairwiseVerdict v) => v.Score1 != v.Score2 ? v.Score1 > v.Score2 : v.RankingPrefersFirst;

    private static async Task RateEachAsync(IJudgeService judge, List<Candidate> candidates, string? principle, GroupJudgingSettings settings, CancellationToken cancellation)
    {
        var weights = settings.RubricWeights ?? GroupJudgingSettings.DefaultRubricWeights;
        double total = weights.Values.Sum();
        await Task.WhenAll(candidates.Select(async c =>
        {
            var messages = JudgePrompts.Rubric(c.Prompt, c.Answer, principle);
            var (verdict, text, failure, parseFailures, judgeFailed) = await AskAsync(judge, messages,
                t => VerdictParser.Rubric(t, JudgePrompts.RubricAttributes), settings.ParseRetries, cancellation);
            double? score = null;
            string shown;
            if (verdict != null)
            {
                score = weights.Sum(w => w.Value * verdict[w.Key]) / (4 * total);
                shown = string.Join(", ", JudgePrompts.RubricAttributes.Select(a => $"{a} {F(verdict[a])}"));
            }
            else if (settings.OnFailure == JudgeFailurePolicy.Neutral)
            {
                score = 0.5;
                shown = $"no verdict ({failure}); counted as 0.5";
            }
            else shown = $"no verdict ({failure})";
            c.Results.Add(("judge_rubric", new Scored(score, $"{shown}\n{Clip(text)}", parseFailures > 0 && verdict == null && !judgeFailed, judgeFailed, verdict == null ? failure : null)));
        }));
    }

    /// <summary>
    /// Asks until a verdict is read: a failed call ends it at once (the pool already retried), an unreadable answer is
    /// asked again with the next attempt number (a new sample) up to <paramref name="parseRetries"/> times.
    /// </summary>
    private static async Task<(T? Verdict, string Text, string? Failure, int ParseFailures, bool JudgeFailed)> AskAsync<T>(IJudgeService judge,
        IReadOnlyList<Message> messages, Func<string, ParsedVerdict<T>> parse, int parseRetries, CancellationToken cancellation) where T : class
    {
        int parseFailures = 0;
        string lastText = "", problem = "";
        for (int attempt = 0; attempt <= parseRetries; attempt++)
        {
            var answer = await judge.CompleteAsync(new JudgeRequest(messages, attempt), cancellation);
            if (!answer.IsOk) return (null, lastText, $"judge {answer.Outcome}: {answer.Error}", parseFailures, true);
            var parsed = parse(answer.Text);
            if (parsed.Value != null) return (parsed.Value, answer.Text, null, parseFailures, false);
            parseFailures++;
            lastText = answer.Text;
            problem = parsed.Problem!;
        }
        return (null, lastText, $"unreadable verdict after {parseFailures} answer(s): {problem}", parseFailures, false);
    }

    /// <summary>Per candidate (answer penalty, reasoning penalty): λ·(ℓ/ℓ̄ − 1) over the group, 0 where the mean is 0.</summary>
    public static IReadOnlyList<(double Answer, double Reasoning)> LengthPenalties(IReadOnlyList<(int Answer, int Reasoning)> lengths, double answerLambda, double reasoningLambda)
    {
        if (lengths.Count == 0) return [];
        double meanA = lengths.Average(l => l.Answer), meanR = lengths.Average(l => l.Reasoning);
        return lengths.Select(l => (
            answerLambda != 0 && meanA > 0 ? answerLambda * (l.Answer / meanA - 1) : 0,
            reasoningLambda != 0 && meanR > 0 ? reasoningLambda * (l.Reasoning / meanR - 1) : 0)).ToList();
    }

    private static IReadOnlyList<(double Answer, double Reasoning)> LengthPenalties(List<Candidate> scored, GroupJudgingSettings s) =>
        LengthPenalties(scored.Select(c => (c.Answer.Length, c.Reasoning.Length)).ToList(), s.AnswerLengthPenalty, s.ReasoningLengthPenalty);

    private static Dictionary<string, string> Evidence(IJudgeService judge, Candidate c, GroupStats stats)
    {
        var evidence = new Dictionary<string, string> { ["judge"] = judge.Judge, ["answer_chars"] = c.Answer.Length.ToString(CultureInfo.InvariantCulture),
            ["reasoning_chars"] = c.Reasoning.Length.ToString(CultureInfo.InvariantCulture) };
        if (stats.BothOrders > 0) evidence["position_disagreement"] = $"{stats.Disagreements} of {stats.BothOrders} pairs judged in both orders";
        foreach (var (key, r) in c.Results) evidence[key] = r.Evidence;
        return evidence;
    }

    private static string Clip(string text) => text.Length <= EvidenceChars ? text : text[..(EvidenceChars / 2)] + " … " + text[^(EvidenceChars / 2)..];

    private static string F(double x) => x.ToString("0.###", CultureInfo.InvariantCulture);
}
