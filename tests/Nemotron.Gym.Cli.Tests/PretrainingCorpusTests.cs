using System.Text.RegularExpressions;
using Nemotron.Gym.Cli.Arithmetic;

namespace Nemotron.Gym.Cli.Tests;

/// <summary>
/// The demo's pretraining text: arithmetic documents with copying prose and products by one digit spread among them
/// (docs/learning-notes.md, experiment 14).
/// </summary>
public sealed class PretrainingCorpusTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-corpus-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static List<string> Documents(string path) =>
        File.ReadAllText(path).Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(d => d.Trim()).Where(d => d.Length > 0).ToList();

    // Every arithmetic document has a digit; no prose document has one. Only products have a '*'.
    private static bool IsProse(string doc) => !doc.Any(char.IsAsciiDigit);
    private static bool IsProduct(string doc) => doc.Contains('*');

    [Fact]
    public void ProseAndProductsAreSpreadAmongTheArithmeticWhichStaysTheSame()
    {
        string with = Path.Combine(_dir, "with"), without = Path.Combine(_dir, "without");
        var small = new ArithmeticCorpusSpec(PretrainDocuments: 400, PretrainValidDocuments: 40, SftTrain: 10, SftValid: 5, EvalProblems: 5,
            ProseDocuments: 100, ProseValidDocuments: 10, TimesDocuments: 50, TimesValidDocuments: 5);
        ArithmeticCorpus.Write(with, small, seed: 3);
        ArithmeticCorpus.Write(without, small with { ProseDocuments = 0, ProseValidDocuments = 0, TimesDocuments = 0, TimesValidDocuments = 0 }, seed: 3);

        var docs = Documents(Path.Combine(with, ArithmeticCorpus.PretrainTrain));
        Assert.Equal(100, docs.Count(IsProse));
        Assert.Equal(50, docs.Count(IsProduct));
        Assert.Equal(Documents(Path.Combine(without, ArithmeticCorpus.PretrainTrain)), docs.Where(d => !IsProse(d) && !IsProduct(d)).ToList());
        // Spread evenly: after every 8 arithmetic documents, 2 of prose and 1 product; not all at the end.
        var firstEleven = docs.Take(11).ToList();
        Assert.Equal((2, 1), (firstEleven.Count(IsProse), firstEleven.Count(IsProduct)));
        var valid = Documents(Path.Combine(with, ArithmeticCorpus.PretrainValid));
        Assert.Equal((10, 5), (valid.Count(IsProse), valid.Count(IsProduct)));
    }

    [Fact]
    public void ProductDocumentsWorkEveryStepRight()
    {
        var rng = new Random(6);
        var step = new Regex(@"(\d)\*(\d)(?:\+(\d))?=(\d+)");
        for (int i = 0; i < 1000; i++)
        {
            string doc = Nemotron.Gym.Environments.Arithmetic.TimesPractice.Document(rng);
            var steps = step.Matches(doc);
            foreach (Match m in steps)
            {
                int k = int.Parse(m.Groups[1].Value), y = int.Parse(m.Groups[2].Value), c = m.Groups[3].Success ? int.Parse(m.Groups[3].Value) : 0;
                Assert.True(k * y + c == int.Parse(m.Groups[4].Value), $"{m.Value} in {doc}");
            }
            // The stated product, in whichever form the document ends with.
            var total = Regex.Match(doc, @"(\d+) ?\* ?(\d+)[ .]");
            var answer = Regex.Match(doc, @"(?:= |A: |answer is )(\d+)\.?$");
            Assert.True(steps.Count > 0 || (total.Success && answer.Success), doc);
            if (total.Success)
                Assert.Equal(int.Parse(total.Groups[1].Value) * int.Parse(total.Groups[2].Value), int.Parse(answer.Groups[1].Value));
        }
    }

    [Fact]
    public void EveryProseDocumentUsesAWordItIntroducedAgain()
    {
        var rng = new Random(5);
        for (int i = 0; i < 2000; i++)
        {
            string doc = CopyingProse.Document(rng);
            Assert.DoesNotContain(doc, char.IsAsciiDigit);
            // The copied word: one that occurs at least twice, not counting the template's own small words.
            var words = Regex.Matches(doc.ToLowerInvariant(), "[a-z]+").Select(m => m.Value).ToList();
            var common = new HashSet<string> { "the", "a", "is", "to", "in", "and", "said", "word", "words", "with", "near", "my", "it", "says", "names", "first", "last", "write", "letters" };
            Assert.True(words.Where(w => !common.Contains(w)).GroupBy(w => w).Any(g => g.Count() >= 2), doc);
        }
    }

    [Fact]
    public void SomeProseDocumentsAskForAPieceAboutAThingNamedWithoutQuotesAndNameItAgain()
    {
        var rng = new Random(6);
        int pieces = 0;
        for (int i = 0; i < 2000; i++)
        {
            string doc = CopyingProse.Document(rng);
            var about = Regex.Match(doc, @"^(?:A short piece|Write|Tell me|Some words) about ([a-z]+)", RegexOptions.IgnoreCase);
            if (!about.Success) continue;
            pieces++;
            string topic = about.Groups[1].Value;
            Assert.DoesNotContain('"', doc);
            // Named again after the request, in the document's own sentences.
            string rest = doc[(about.Index + about.Length)..];
            Assert.Contains(topic.ToLowerInvariant(), rest.ToLowerInvariant());
        }
        // One kind of seven, so about 285 of 2,000.
        Assert.InRange(pieces, 200, 380);
    }

    [Theory]
    [InlineData("kite", "kites")]
    [InlineData("box", "boxes")]
    [InlineData("brush", "brushes")]
    [InlineData("leaf", "leaves")]
    [InlineData("glass", "glasses")]
    [InlineData("bench", "benches")]
    public void PluralsAreEnglish(string noun, string plural) => Assert.Equal(plural, CopyingProse.PluralOf(noun));

    [Fact]
    public void MadeUpWordsAreTooManyToLearnByHeart()
    {
        var rng = new Random(8);
        var words = Enumerable.Range(0, 5000).Select(_ => CopyingProse.MadeUpWord(rng)).ToList();
        Assert.True(words.Distinct().Count() > 4500, $"{words.Distinct().Count()} distinct of 5000");
        Assert.All(words, w => Assert.Matches("^[a-z]{3,}$", w));
    }
}
