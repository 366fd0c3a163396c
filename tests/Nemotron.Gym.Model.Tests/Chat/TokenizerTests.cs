using Nemotron.Gym.Model.Tokenization;

namespace Nemotron.Gym.Model.Tests;

public class TokenizerTests
{
    [Fact]
    public void BpeVocabularyRoundTripsAndPlacesSpecialsAfterItsOwnIds()
    {
        var tok = TokenizerFactory.Create("cl100k_base");
        const string text = "Nemotron.Gym trains 347 + 589 = 936 policies.";
        var ids = tok.Encode(text);
        Assert.True(ids.Count < text.Length / 2, "BPE should compress ordinary text");
        Assert.Equal(text, tok.Decode(ids.ToArray()));
        Assert.Equal(100_277, tok.Specials.EndOfText);
        Assert.Equal("<|end|>", tok.Decode([tok.Specials.EndOfTurn]));
        Assert.DoesNotContain(ids, id => tok.Specials.IsSpecial(id));
    }

    [Fact]
    public void DescriptionsRoundTripAndMismatchesAreRefused()
    {
        var json = new ByteTokenizer().ToJson();
        Assert.Equal(267, TokenizerFactory.FromJson(json, "t.json").VocabSize);
        json["specials"]!["first_id"] = 300;
        var e = Assert.Throws<InvalidDataException>(() => TokenizerFactory.FromJson(json, "t.json"));
        Assert.Contains("t.json", e.Message);
        Assert.Throws<ArgumentException>(() => TokenizerFactory.Create("sentencepiece"));
    }
}
