using System.Diagnostics;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Training.Config;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Sampling;

namespace Nemotron.Gym.Training.Grpo;

/// <summary>The `rollout:` section: how episodes are generated.</summary>
public sealed class RolloutSettings : IValidatedConfig
{
    /// <summary>New tokens per assistant turn at most.</summary>
    public int MaxNewTokens { get; set; } = 160;
    /// <summary>Assistant turns per episode at most.</summary>
    public int MaxTurns { get; set; } = 4;
    /// <summary>Sampling temperature (RL samples the policy as it is: 1).</summary>
    public float Temperature { get; set; } = 1f;
    /// <summary>Top-k (0 = off).</summary>
    public int TopK { get; set; }
    /// <summary>Top-p (1 = off).</summary>
    public float TopP { get; set; } = 1f;
    /// <summary>Rows decoded together.</summary>
    public int MaxBatch { get; set; } = 128;
    /// <summary>
    /// Weights the sampler uses: fp32 (the trainer's own) or bf16 (a rounded copy refreshed after every
    /// optimizer step, as a bf16 inference engine would hold). bf16 makes lp_gen differ from lp_old for real,
    /// which is what importance-sampling correction exists for.
    /// </summary>
    public SamplerPrecision SamplerPrecision { get; set; } = SamplerPrecision.Fp32;

    /// <summary>The sampling parameters.</summary>
    public SamplingParams Sampling => new(Temperature, TopK, TopP);

    /// <inheritdoc />
    public void Validate(string path)
    {
        if (MaxNewTokens < 1) throw new ConfigException($"{path}.max_new_tokens: must be >= 1, got {MaxNewTokens}");
        if (MaxTurns < 1) throw new ConfigException($"{path}.max_turns: must be >= 1, got {MaxTurns}");
        if (MaxBatch < 1) throw new ConfigException($"{path}.max_batch: must be >= 1, got {MaxBatch}");
        try { Sampling.Validate(); }
        catch (ArgumentException e) { throw new ConfigException($"{path}: {e.Message}"); }
    }
}

/// <summary>The precision of the sampler's copy of the weights.</summary>
public enum SamplerPrecision
{
    /// <summary>The trainer's weights as they are.</summary>
    Fp32,
    /// <summary>A copy rounded to bfloat16.</summary>
    Bf16,
}

/// <summary>Wall time of a collection, split by who was waited on.</summary>
public sealed record CollectionTimes(double GenerateSeconds, double EnvironmentSeconds);

/// <summary>
/// Runs the episodes of a step: every live episode's next assistant turn is generated in one batch,
/// environments answer the turns concurrently, and finished episodes are graded in the background
/// while the others keep generating. Tokens are kept exactly as generated; environment turns are
/// appended as rendered by the chat template and are never trained on.
/// </summary>
public sealed class RolloutCollector(GptModel model, ChatTemplate template, RolloutSettings settings)
{
    private sealed class Live
    {
        public required RlTask Task;
        public required int SampleIndex;
        public required IEpisode Episode;
        public required List<int> Tokens;
        public readonly List<byte> Generated = new();
        public readonly List<float> LogProbs = new();
        public required List<Message> Messages;
        public int Turns;
        public bool Truncated;
        public double EnvSeconds;
        public double GenSeconds; // wall time of the batched generation rounds this episode took part in
        public Task<Grade>? Grading;
    }

    /// <summary>Generates and grades <paramref name="groupSize"/> episodes of each task.</summary>
    public async Task<(List<RolloutGroup> Groups, CollectionTimes Times)> CollectAsync(IReadOnlyList<RlTask> tasks, int groupSize, IEpisodeSource source, int seed, CancellationToken cancellation)
    {
        var s = template.Tokenizer.Specials;
        var opened = await Task.WhenAll(tasks.SelectMany(t => Enumerable.Range(0, groupSize).Select(async g =>
        {
            var ep = await source.OpenAsync(t, g, Sampler.StreamSeed(seed, g), cancellation);
            var prompt = template.RenderGenerationPrompt(ep.Opening);
            return new Live
            {
                Task = t, SampleIndex = g, Episode = ep,
                Tokens = [.. prompt],
                Messages = [.. ep.Opening.Messages],
            };
        })));
        foreach (var e in opened)
        {
            e.Generated.AddRange(Enumerable.Repeat((byte)0, e.Tokens.Count));
            e.LogProbs.AddRange(Enumerable.Repeat(0f, e.Tokens.Count));
        }

        using var sampler = new Sampler(model);
        var live = opened.ToList();
        var clock = new Stopwatch();
        double generateSeconds = 0, environmentSeconds = 0;
        int round = 0;
        while (live.Count > 0)
        {
            cancellation.ThrowIfCancellationRequested();
            // Episodes whose context is already full end here, truncated.
            foreach (var e in live.Where(e => e.Tokens.Count >= model.Config.Context - 1).ToList())
            {
                e.Truncated = true;
                Finish(e, cancellation);
                live.Remove(e);
            }
            if (live.Count == 0) break;
            clock.Restart();
            var options = new GenerationOptions(settings.MaxNewTokens, settings.Sampling, Sampler.StreamSeed(seed, 1000 + round), [s.EndOfTurn, s.EndOfText], settings.MaxBatch);
            var generations = sampler.Generate(live.Select(e => e.Tokens.ToArray()).ToList(), options, cancellation);
            double roundSeconds = clock.Elapsed.TotalSeconds;
            generateSeconds += roundSeconds;
            foreach (var e in live) e.GenSeconds += roundSeconds;
            round++;

            var stepping = new List<(Live Episode, Task<EpisodeReply> Reply, long Started)>();
            for (int i = 0; i < live.Count; i++)
            {
                var e = live[i];
                var g = generations[i];
                e.Tokens.AddRange(g.Tokens);
                e.Generated.AddRange(Enumerable.Repeat((byte)1, g.Tokens.Length));
                e.LogProbs.AddRange(g.LogProbs);
                e.Turns++;
                // Cut off (length or context), ended with end-of-text instead of ending its turn, or out of turns:
                // the environment records the turn, and the episode is graded.
                e.Truncated = g.Finish != FinishReason.Stop;
                bool final = e.Truncated || g.Tokens[^1] != s.EndOfTurn || e.Turns >= settings.MaxTurns;
                // The one parse of the turn: the transcript keeps it, and the environment receives it as it is.
                var turn = AssistantTurn.Parse(template.Tokenizer.Decode(g.Tokens), final);
                e.Messages.Add(turn.ToMessage());
                stepping.Add((e, e.Episode.StepAsync(turn, final, cancellation), Stopwatch.GetTimestamp()));
            }

            clock.Restart();
            var next = new List<Live>();
            foreach (var (e, replyTask, started) in stepping)
            {
                var reply = await replyTask;
                e.EnvSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;
                bool final = e.Truncated || e.Tokens[^1] != s.EndOfTurn || e.Turns >= settings.MaxTurns;
                if (final || reply.Done || reply.Reply.Count == 0)
                {
                    Finish(e, cancellation);
                    continue;
                }
                var extra = new List<int>();
                foreach (var m in reply.Reply)
                {
                    var turn = template.RenderTurnAndAssistantOpener(m);
                    extra.AddRange(turn[..^1]); // the opener goes once, after the last reply message
                    e.Messages.Add(m);
                }
                extra.Add(s.Assistant);
                if (e.Tokens.Count + extra.Count >= model.Config.Context - 1)
                {
                    e.Truncated = true;
                    Finish(e, cancellation);
                    continue;
                }
                e.Tokens.AddRange(extra);
                e.Generated.AddRange(Enumerable.Repeat((byte)0, extra.Count));
                e.LogProbs.AddRange(Enumerable.Repeat(0f, extra.Count));
                next.Add(e);
            }
            environmentSeconds += clock.Elapsed.TotalSeconds;
            live = next;
        }

        clock.Restart();
        var grades = await Task.WhenAll(opened.Select(e => e.Grading!));
        // Group grading, once every member of every group is graded on its own: groups are independent, so all at once.
        if (source is IGroupGradingSource groupGrader)
            await Task.WhenAll(tasks.Select(async (task, t) =>
            {
                var members = Enumerable.Range(t * groupSize, groupSize)
                    .Select(i => new GroupMember(opened[i].SampleIndex, opened[i].Messages, grades[i], opened[i].Truncated)).ToList();
                var started = Stopwatch.GetTimestamp();
                var final = await groupGrader.GradeGroupAsync(task, members, cancellation);
                if (final.Count != groupSize)
                    throw new InvalidOperationException($"group grading of {task.Id} returned {final.Count} grades for {groupSize} rollouts");
                double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
                for (int g = 0; g < groupSize; g++)
                {
                    grades[t * groupSize + g] = final[g];
                    opened[t * groupSize + g].EnvSeconds += seconds;
                }
            }));
        environmentSeconds += clock.Elapsed.TotalSeconds;

        var groups = new List<RolloutGroup>();
        int index = 0;
        foreach (var task in tasks)
        {
            var rollouts = new List<Rollout>();
            for (int g = 0; g < groupSize; g++, index++)
            {
                var e = opened[index];
                rollouts.Add(new Rollout
                {
                    Task = task, SampleIndex = e.SampleIndex, Tokens = e.Tokens.ToArray(), Generated = e.Generated.ToArray(),
                    SamplerLogProbs = e.LogProbs.ToArray(), Messages = e.Messages, Truncated = e.Truncated, Turns = e.Turns,
                    Grade = grades[index], GenerateSeconds = e.GenSeconds, EnvironmentSeconds = e.EnvSeconds,
                });
            }
            groups.Add(new RolloutGroup(task, rollouts));
        }
        return (groups, new CollectionTimes(generateSeconds, environmentSeconds));
    }

    /// <summary>Starts grading in the background; the collector awaits all grades at the end.</summary>
    private static void Finish(Live e, CancellationToken cancellation)
    {
        long started = Stopwatch.GetTimestamp();
        e.Grading = Grade(e, started, cancellation);
    }

    private static async Task<Grade> Grade(Live e, long started, CancellationToken cancellation)
    {
        var grade = await e.Episode.GradeAsync(e.Truncated, cancellation);
        e.EnvSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;
        return grade;
    }
}
