using System.Text.RegularExpressions;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Environments.InstructionFollowing;

namespace Nemotron.Gym.Environments.Tests;

public class ConstraintTests
{
    // The kinds the demo asks for (gym/Nemotron.Gym.Cli/Configs/demo-rl.yaml).
    private const string DemoKinds = "min_words,num_sentences,bullet_list,lowercase,uppercase,end_with,title,num_paragraphs,keyword_frequency";

    [Theory]
    [InlineData("One. Two! Three?", 3)]
    [InlineData("No terminator at all", 1)]
    [InlineData("Wait... what?! Yes.", 3)]
    [InlineData("", 0)]
    public void SentenceCounting(string text, int n) => Assert.Equal(n, Constraint.Sentences(text));

    [Fact]
    public void ChecksMeasureWhatTheyClaim()
    {
        Assert.True(new IncludeKeywords(["Lantern"]).Check("a lantern glows").Ok);
        Assert.False(new IncludeKeywords(["lantern"]).Check("lanterns glow").Ok); // whole words only
        Assert.False(new ForbiddenWords(["very"]).Check("It is VERY nice").Ok);
        Assert.True(new BulletList(2).Check("* one\n- two\nthree").Ok);
        Assert.True(new JsonFormat().Check("```json\n{\"a\": 1}\n```").Ok);
        Assert.False(new JsonFormat().Check("[1, 2]").Ok);
        Assert.False(new JsonFormat().Check(new string('[', 10_000)).Ok);
        Assert.True(new Title().Check("<<A Title>>\nbody").Ok);
        Assert.True(new NumParagraphs(2).Check("a b\n\n   \n\nc d").Ok);
        Assert.True(new KeywordFrequency("rain", 2).Check("Rain, rain, go away").Ok);
        Assert.True(new StartWith("Today").Check("  Today we talk").Ok);
        Assert.False(new StartWith("Today").Check("today we talk").Ok);
        Assert.True(new EndWith("That is all.").Check("Words.\nThat is all.  ").Ok);
        Assert.False(new Lowercase().Check("Hello").Ok);
        Assert.True(new MaxWords(3).Check("one two three").Ok);
    }

    [Fact]
    public void ConstraintsKeptByWritingNothingCountOnlyForAnAnswerAboutTheTopic()
    {
        // The answer an RL policy converged to: a bare number keeps "no commas", "at most 50 words" and lowercase.
        var cs = new Constraint[] { new IncludeKeywords(["indigo"]), new NoCommas(), new MaxWords(50), new Lowercase() };
        var hack = InstructionFollowingEnvironment.Verify("1", cs, "lighthouses");
        Assert.Equal(0, hack.Reward);
        Assert.Contains("writing nothing about lighthouses", hack.Evidence["no_commas"]);
        // Without a topic (tasks written before the gate) the old fraction stands.
        Assert.Equal(0.75, InstructionFollowingEnvironment.Verify("1", cs).Reward, 1e-9);
        // An answer about the topic, in the singular, keeps them.
        Assert.Equal(0.75, InstructionFollowingEnvironment.Verify("the old lighthouse stands tall", cs, "lighthouses").Reward, 1e-9);
        Assert.Equal(1, InstructionFollowingEnvironment.Verify("indigo light from the lighthouse", cs, "lighthouses").Reward);
    }

    [Theory]
    [InlineData("libraries", "A library is quiet.", true)]
    [InlineData("bees", "One bee hums.", true)]
    [InlineData("winter", "WINTER is cold.", true)]
    [InlineData("trains", "Strains of music.", false)]
    [InlineData("gardens", "", false)]
    public void TheTopicIsMatchedAsAWholeWordInPluralOrSingular(string topic, string answer, bool mentions) =>
        Assert.Equal(mentions, InstructionFollowingEnvironment.MentionsTopic(answer, topic));

    [Fact]
    public void RewardIsTheFractionSatisfiedWithAnAllFlag()
    {
        var cs = new Constraint[] { new IncludeKeywords(["copper"]), new NoCommas(), new MinWords(5) };
        var g = InstructionFollowingEnvironment.Verify("Copper shines, bright.", cs);
        Assert.Equal(1.0 / 3, g.Reward, 1e-9);
        Assert.Equal(0, g.Components["all_satisfied"]);
        Assert.Contains("no_commas", g.Reason);
        var ok = InstructionFollowingEnvironment.Verify("Copper shines bright in the morning sun", cs);
        Assert.Equal(1, ok.Reward);
        Assert.Equal(1, ok.Components["all_satisfied"]);
        Assert.Equal(0, InstructionFollowingEnvironment.Verify("   ", cs).Reward);
    }

    [Fact]
    public async Task BinaryRewardModeScoresOneOnlyWhenEveryConstraintHolds()
    {
        var fraction = await EnvTestKit.Start<InstructionFollowingEnvironment>(new() { ["constraints"] = "3" });
        var binary = await EnvTestKit.Start<InstructionFollowingEnvironment>(new() { ["constraints"] = "3", ["reward_mode"] = "binary" });
        var task = (await binary.LoadTasksAsync(new TaskQuery("train", 1, 4), default)).Single();
        // The reference keeps all three; the same answer with another word for the keyword (in the same case) keeps two.
        string reference = task.Reference[0].Content, keyword = (string)task.VerifierMetadata["constraints"]![0]!["keywords"]![0]!;
        string partial = Regex.Replace(reference, keyword, m => m.Value == m.Value.ToUpperInvariant() ? "THING" : "thing", RegexOptions.IgnoreCase);
        Assert.NotEqual(reference, partial);
        Assert.Equal(1, (await EnvTestKit.Play(binary, task, AssistantTurn.FromContent(reference))).Reward);
        var strict = await EnvTestKit.Play(binary, task, AssistantTurn.FromContent(partial));
        var lenient = await EnvTestKit.Play(fraction, task, AssistantTurn.FromContent(partial));
        Assert.Equal(0, strict.Reward);
        Assert.Equal(2.0 / 3, lenient.Reward, 1e-9);
        Assert.Equal(lenient.Components, strict.Components);
    }

    [Theory]
    [InlineData(5, "train")]
    [InlineData(3, "train")]
    [InlineData(3, "heldout")]
    [InlineData(1, "train")]
    public async Task GeneratedTasksAreCompatibleAndTheirReferencesPass(int constraints, string split)
    {
        var env = await EnvTestKit.Start<InstructionFollowingEnvironment>(new() { ["constraints"] = constraints.ToString() });
        var tasks = await env.LoadTasksAsync(new TaskQuery(split, 200, 9), default);
        foreach (var t in tasks)
        {
            Assert.Empty(env.ValidateTask(t));
            Assert.Equal(1, (await EnvTestKit.Play(env, t, t.Reference.ToArray())).Reward);
        }
        Assert.True(tasks.Average(t => t.VerifierMetadata["constraints"]!.AsArray().Count) > constraints - 1);
    }

    [Fact]
    public async Task KindsSetWhichConstraintsAPromptAddsToItsKeyword()
    {
        static async Task<List<string>> Ids(Dictionary<string, string> settings, string split = "train")
        {
            var env = await EnvTestKit.Start<InstructionFollowingEnvironment>(settings);
            var tasks = await env.LoadTasksAsync(new TaskQuery(split, 300, 5), default);
            foreach (var t in tasks.Take(60)) Assert.Equal(1, (await EnvTestKit.Play(env, t, t.Reference.ToArray())).Reward);
            Assert.All(tasks, t => Assert.Equal(int.Parse(settings["constraints"]), t.VerifierMetadata["constraints"]!.AsArray().Count));
            return tasks.SelectMany(t => t.VerifierMetadata["constraints"]!.AsArray().Select(c => c!["id"]!.GetValue<string>())).ToList();
        }
        var few = await Ids(new() { ["constraints"] = "2", ["kinds"] = "uppercase, title,end_with" });
        Assert.Equal(["end_with", "include_keywords", "title", "uppercase"], few.Distinct().Order());
        // Kinds that conflict are never asked together; the generator draws again until the count is met.
        var pair = await Ids(new() { ["constraints"] = "3", ["kinds"] = "no_commas,lowercase,uppercase" }, "heldout");
        Assert.DoesNotContain(pair.Chunk(3), c => c.Contains("lowercase") && c.Contains("uppercase"));
        Assert.Contains("lowercase", pair);
        Assert.Contains("uppercase", pair);
        // A set that can never be met (title conflicts with both cases, and they with each other) says so.
        var never = await Assert.ThrowsAsync<InvalidOperationException>(() => Ids(new() { ["constraints"] = "3", ["kinds"] = "title,lowercase,uppercase" }));
        Assert.Contains("could not write a reference for 3 compatible constraints from", never.Message);
        // Naming every kind is the default: the same tasks as without the setting.
        var all = new Dictionary<string, string> { ["constraints"] = "2", ["kinds"] = string.Join(",", PromptGenerator.Kinds) };
        Assert.Equal(await Ids(new() { ["constraints"] = "2" }), await Ids(all));
        Assert.Equal(14, PromptGenerator.Kinds.Count);

        var unknown = await Assert.ThrowsAsync<ArgumentException>(() => EnvTestKit.Start<InstructionFollowingEnvironment>(new() { ["kinds"] = "title,haiku" }));
        Assert.Contains("'kinds': unknown constraint kind 'haiku'", unknown.Message);
        var tooFew = await Assert.ThrowsAsync<ArgumentException>(() => EnvTestKit.Start<InstructionFollowingEnvironment>(new() { ["constraints"] = "4", ["kinds"] = "title,uppercase" }));
        Assert.Contains("names 2 kinds, but 'constraints' asks for 4", tooFew.Message);
    }

    /// <summary>
    /// References are as long as their constraints need and no longer (a small policy imitates them in SFT, and
    /// every byte beyond the needed ones costs context): the keyword's sentence plus one sentence that names the
    /// topic, and with a word minimum at most one template sentence past it.
    /// </summary>
    [Fact]
    public void ReferencesAreOnlyAsLongAsTheirConstraintsNeed()
    {
        var rng = new Random(3);
        for (int i = 0; i < 300; i++)
        {
            var g = PromptGenerator.Generate(rng, 1, i);
            Assert.Equal(2, Constraint.Sentences(g.Reference));
            Assert.StartsWith("The " + ((IncludeKeywords)g.Constraints[0]).Keywords[0] + " stays in my mind.", g.Reference);
        }
        int withMinimum = 0;
        for (int i = 0; i < 2000; i++)
        {
            var g = PromptGenerator.Generate(rng, 2, i);
            if (g.Constraints.OfType<MinWords>().SingleOrDefault() is not { } min) continue;
            withMinimum++;
            int words = Constraint.Words(g.Reference).Count;
            // The longest template sentence has 10 words: the last one added is the only one past the minimum.
            Assert.InRange(words, min.N, min.N + 10);
        }
        Assert.True(withMinimum > 50, $"only {withMinimum} prompts had a word minimum");
    }

    /// <summary>
    /// max_answer_chars: every task's verified reference fits the budget, every kind the demo asks for still comes up
    /// (with word minimums drawn from what fits), and a budget nothing fits in says which setting refused.
    /// </summary>
    [Fact]
    public async Task MaxAnswerCharsKeepsEveryReferenceWithinTheBudget()
    {
        var env = await EnvTestKit.Start<InstructionFollowingEnvironment>(new() { ["constraints"] = "2", ["kinds"] = DemoKinds, ["max_answer_chars"] = "96" });
        var tasks = await env.LoadTasksAsync(new TaskQuery("train", 600, 7), default);
        Assert.Equal(600, tasks.Count);
        foreach (var t in tasks)
        {
            string reference = t.Reference[0].Content!;
            Assert.InRange(System.Text.Encoding.UTF8.GetByteCount(reference), 1, 96);
            foreach (var c in t.VerifierMetadata["constraints"]!.AsArray())
                if (c!["id"]!.GetValue<string>() == "min_words") Assert.InRange(c["n"]!.GetValue<int>(), 10, 15);
        }
        foreach (var t in tasks.Take(100)) Assert.Equal(1, (await EnvTestKit.Play(env, t, t.Reference.ToArray())).Reward);
        var ids = tasks.SelectMany(t => t.VerifierMetadata["constraints"]!.AsArray().Select(c => c!["id"]!.GetValue<string>())).ToHashSet();
        Assert.Superset(DemoKinds.Split(',').ToHashSet(), ids);
        // Without the budget the same settings write references past 96 bytes (the answers finding 4 saw cut).
        var free = await EnvTestKit.Start<InstructionFollowingEnvironment>(new() { ["constraints"] = "2", ["kinds"] = DemoKinds });
        Assert.Contains(await free.LoadTasksAsync(new TaskQuery("train", 600, 7), default), t => t.Reference[0].Content!.Length > 96);

        var tiny = await EnvTestKit.Start<InstructionFollowingEnvironment>(new() { ["constraints"] = "2", ["kinds"] = "bullet_list", ["max_answer_chars"] = "20" });
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => tiny.LoadTasksAsync(new TaskQuery("train", 5, 1), default).AsTask());
        Assert.Contains("within max_answer_chars = 20", refused.Message);
    }

    /// <summary>
    /// min_words_max: no word minimum is drawn above it, every reference still meets its constraints, the default draws
    /// up to 40 as before, and a value under the lowest minimum is refused naming the setting.
    /// </summary>
    [Fact]
    public async Task MinWordsMaxCapsTheWordMinimumsDrawn()
    {
        static IEnumerable<int> Minimums(IReadOnlyList<TaskRecord> tasks) => tasks.SelectMany(t => t.VerifierMetadata["constraints"]!.AsArray())
            .Where(c => c!["id"]!.GetValue<string>() == "min_words").Select(c => c!["n"]!.GetValue<int>());

        var capped = await EnvTestKit.Start<InstructionFollowingEnvironment>(new() { ["constraints"] = "2", ["kinds"] = DemoKinds, ["min_words_max"] = "15" });
        var tasks = await capped.LoadTasksAsync(new TaskQuery("heldout", 200, 5), default);
        Assert.Equal(200, tasks.Count);
        Assert.True(Minimums(tasks).Count() > 10, "too few word minimums to judge");
        Assert.All(Minimums(tasks), n => Assert.Equal(15, n));
        foreach (var t in tasks.Where(t => Minimums([t]).Any())) Assert.Equal(1, (await EnvTestKit.Play(capped, t, t.Reference.ToArray())).Reward);

        var free = await EnvTestKit.Start<InstructionFollowingEnvironment>(new() { ["constraints"] = "2", ["kinds"] = DemoKinds });
        var drawn = Minimums(await free.LoadTasksAsync(new TaskQuery("heldout", 200, 5), default)).ToHashSet();
        Assert.Equal(15, drawn.Min());
        Assert.Equal(40, drawn.Max());

        var refused = await Assert.ThrowsAsync<ArgumentException>(() => EnvTestKit.Start<InstructionFollowingEnvironment>(new() { ["constraints"] = "2", ["kinds"] = DemoKinds, ["min_words_max"] = "5" }));
        Assert.Contains("min_words_max", refused.Message);
    }

    /// <summary>
    /// structure_count: every bullet list, sentence count and paragraph count asks for exactly that many, each reference
    /// still meets its constraints, and the tasks differ from the default ones only in those counts (the fixed count
    /// takes its draw, so every other number is drawn as before).
    /// </summary>
    [Fact]
    public async Task StructureCountFixesBulletsSentencesAndParagraphs()
    {
        string[] counted = ["bullet_list", "num_sentences", "num_paragraphs"];
        var fixedEnv = await EnvTestKit.Start<InstructionFollowingEnvironment>(new() { ["constraints"] = "2", ["kinds"] = DemoKinds, ["structure_count"] = "3" });
        var tasks = await fixedEnv.LoadTasksAsync(new TaskQuery("train", 300, 9), default);
        int structured = 0;
        foreach (var t in tasks)
        {
            var counts = t.VerifierMetadata["constraints"]!.AsArray().Where(c => counted.Contains(c!["id"]!.GetValue<string>())).Select(c => c!["n"]!.GetValue<int>()).ToList();
            if (counts.Count == 0) continue;
            structured++;
            Assert.All(counts, n => Assert.Equal(3, n));
            Assert.Equal(1, (await EnvTestKit.Play(fixedEnv, t, t.Reference.ToArray())).Reward);
        }
        Assert.True(structured > 50, $"only {structured} tasks had a bullet, sentence or paragraph count");

        // Prompt by prompt from the same stream: the same topic and kinds, only the three counts set to 3.
        var set = DemoKinds.Split(',').ToHashSet();
        var (a, b) = (new Random(4), new Random(4));
        for (int i = 0; i < 200; i++)
        {
            var usual = PromptGenerator.Generate(a, 2, i, set);
            var three = PromptGenerator.Generate(b, 2, i, set, structureCount: 3);
            Assert.Equal(usual.Topic, three.Topic);
            Assert.Equal(usual.Constraints.Select(c => c.Id), three.Constraints.Select(c => c.Id));
            string Numbers(PromptGenerator.Generated g) => string.Join(",", g.Constraints.Where(c => !counted.Contains(c.Id)).Select(c => c.ToJson().ToJsonString()));
            Assert.Equal(Numbers(usual), Numbers(three));
        }
    }
}
