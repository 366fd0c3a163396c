using Nemotron.Gym.Conversation;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Sampling;

namespace Nemotron.Gym.Cli.Arithmetic;

/// <summary>One evaluated question.</summary>
public sealed record EvalItem(string Question, string Expected, string Reasoning, string Answer, bool Correct, FinishReason Finish);

/// <summary>Accuracy and the items behind it.</summary>
public sealed record EvalResult(int Correct, int Total, IReadOnlyList<EvalItem> Items)
{
    /// <summary>Fraction correct.</summary>
    public double Accuracy => Total == 0 ? 0 : (double)Correct / Total;
}

/// <summary>
/// Asks the model each question as a chat turn and compares its final answer (the content after the
/// reasoning) with the expected text exactly, after trimming.
/// </summary>
public static class ExactMatchEval
{
    /// <summary>Generates for every question (greedy unless <paramref name="sampling"/> says otherwise) and scores.</summary>
    public static EvalResult Run(GptModel model, ChatTemplate template, IReadOnlyList<(string Question, string Answer)> items,
        SamplingParams sampling, int maxNewTokens, int seed, CancellationToken cancellation = default)
    {
        var s = template.Tokenizer.Specials;
        var prompts = items.Select(i => template.RenderGenerationPrompt(new ChatTranscript([Message.User(i.Question)]))).ToList();
        // A question that does not fit the context cannot be answered: it counts as wrong, not as a crash.
        var fits = Enumerable.Range(0, items.Count).Where(i => prompts[i].Length < model.Config.Context).ToList();
        using var sampler = new Sampler(model);
        var generated = sampler.Generate(fits.Select(i => prompts[i]).ToList(), new GenerationOptions(maxNewTokens, sampling, seed, [s.EndOfTurn, s.EndOfText]), cancellation);
        var generations = new Generation?[items.Count];
        for (int j = 0; j < fits.Count; j++) generations[fits[j]] = generated[j];
        var results = new List<EvalItem>();
        int correct = 0;
        for (int i = 0; i < items.Count; i++)
        {
            if (generations[i] is not { } generation)
            {
                results.Add(new EvalItem(items[i].Question, items[i].Answer, "", $"(prompt of {prompts[i].Length} tokens does not fit the context of {model.Config.Context})", false, FinishReason.Context));
                continue;
            }
            var text = template.Tokenizer.Decode(generation.Tokens);
            // Parsed as a final turn: one that never reached end-of-turn comes back truncated, and cannot be right.
            var output = AssistantTurn.Parse(text, final: true);
            bool ok = !output.Truncated && output.Content.Trim() == items[i].Answer.Trim();
            if (ok) correct++;
            results.Add(new EvalItem(items[i].Question, items[i].Answer, output.Reasoning ?? "", output.Content, ok, generation.Finish));
        }
        return new EvalResult(correct, items.Count, results);
    }
}
