using Nemotron.Gym.Conversation;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model;
using Nemotron.Gym.Training.Grpo;
using Nemotron.Gym.Model.Tokenization;

namespace Nemotron.Gym.Training.Tests;

/// <summary>Multi-turn episodes through the collector: what is marked as generated, and what is not.</summary>
public sealed class RolloutCollectorTests
{
    private readonly ByteTokenizer _tok = new();

    /// <summary>
    /// A model that ends its turn at once with probability about 0.999, whatever it is given: every block is
    /// zero (the residual stream is the token embedding), every embedding row points along dimension 0, and
    /// the end-of-turn row is longer, so after the final norm its logit leads the others by about 12.4.
    /// </summary>
    private GptModel EndsTurnsAtOnce()
    {
        var m = new GptModel(new CpuBackend(2), new GptConfig(Layers: 1, Width: 32, Heads: 2, Context: 96, Vocab: _tok.VocabSize));
        var p = new float[m.Layout.Total];
        var wte = m.Layout.TokenTable;
        for (int v = 0; v < _tok.VocabSize; v++) p[wte.Offset + (long)v * 32] = v == _tok.Specials.EndOfTurn ? 3.2f : 1f;
        var lnf = m.Layout.FinalNorm;
        for (int i = 0; i < 32; i++) p[lnf.Offset + i] = 1f;
        m.UploadParameters(p);
        return m;
    }

    /// <summary>Answers each assistant turn with a tool result until the third, then ends.</summary>
    private sealed class ThreeTurns : IEpisodeSource
    {
        public IReadOnlyList<RlTask> Tasks { get; } = [new RlTask("t0", "tools")];
        public List<string> Steps { get; } = [];
        public Task<IEpisode> OpenAsync(RlTask task, int sampleIndex, int seed, CancellationToken cancellation) => Task.FromResult<IEpisode>(new Ep(this));
        private sealed class Ep(ThreeTurns owner) : IEpisode
        {
            private int _turn;
            public ChatTranscript Opening { get; } = new([Message.User("look it up")]);
            public Task<EpisodeReply> StepAsync(AssistantTurn turn, bool final, CancellationToken c)
            {
                lock (owner.Steps) owner.Steps.Add($"{turn.Text}|{final}");
                _turn++;
                return Task.FromResult(_turn >= 3 ? EpisodeReply.End : new EpisodeReply(false, [new Message(Role.Tool, $"result {_turn}")]));
            }
            public Task<Grade> GradeAsync(bool truncated, CancellationToken c) => Task.FromResult(Grade.Of(_turn / 3.0, $"turns {_turn}"));
        }
    }

    [Fact]
    public async Task OnlyTheModelsTokensAreMarkedGeneratedInAMultiTurnEpisode()
    {
        using var model = EndsTurnsAtOnce();
        var template = new ChatTemplate(_tok);
        var source = new ThreeTurns();
        var collector = new RolloutCollector(model, template, new RolloutSettings { MaxNewTokens = 4, MaxTurns = 4 });
        var (groups, times) = await collector.CollectAsync(source.Tasks, groupSize: 2, source, seed: 11, TestContext.Current.CancellationToken);

        var s = _tok.Specials;
        // What the episode must look like: prompt, then per turn the model's <|end|>, the tool turn and the next opener.
        var expected = new List<int>(template.RenderGenerationPrompt(new ChatTranscript([Message.User("look it up")])));
        var generatedAt = new List<int>();
        for (int turn = 1; turn <= 3; turn++)
        {
            generatedAt.Add(expected.Count);
            expected.Add(s.EndOfTurn);
            if (turn < 3) expected.AddRange(template.RenderTurnAndAssistantOpener(new Message(Role.Tool, $"result {turn}")));
        }

        var rollouts = Assert.Single(groups).Rollouts;
        Assert.Equal(2, rollouts.Count);
        foreach (var r in rollouts)
        {
            Assert.Equal(expected, r.Tokens);
            Assert.Equal(3, r.Turns);
            Assert.False(r.Truncated);
            Assert.Equal(1.0, r.Grade.Reward);
            for (int p = 0; p < r.Tokens.Length; p++)
            {
                bool gen = generatedAt.Contains(p);
                Assert.Equal(gen ? (byte)1 : (byte)0, r.Generated[p]);
                // lp_gen of a generated <|end|> is log(~0.999): small and negative; elsewhere exactly 0.
                if (gen) Assert.InRange(r.SamplerLogProbs[p], -0.01f, -1e-6f);
                else Assert.Equal(0f, r.SamplerLogProbs[p]);
            }
            // user, then assistant/tool alternating, ending with the assistant.
            Assert.Equal([Role.User, Role.Assistant, Role.Tool, Role.Assistant, Role.Tool, Role.Assistant], r.Messages.Select(m => m.Role));
            // Both episodes took part in all three generation rounds, so each carries the whole generation time.
            Assert.True(r.GenerateSeconds > 0);
            Assert.Equal(times.GenerateSeconds, r.GenerateSeconds, 9);
            Assert.True(r.EnvironmentSeconds >= 0);
        }
        // The environment saw the raw turn text (with its end-of-turn marker) three times per episode; none was
        // final, because the model ended each turn and the environment, not the turn limit, closed the episode.
        Assert.Equal(Enumerable.Repeat("<|end|>|False", 6), source.Steps);
    }
}
