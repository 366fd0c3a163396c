using System.Text;

namespace Nemotron.Gym.Cli.Arithmetic;

/// <summary>
/// Short English documents for the demo's pretraining corpus in which a word or name, often a made-up one, is
/// introduced and then used again: the model can only predict the second use by copying the first. The arithmetic
/// corpus alone never asks for that, and the demo's policy could not copy a word from its prompt: in instruction
/// following it wrote one of the keywords it had seen in SFT, not the one asked for (docs/learning-notes.md,
/// experiment 14). Made-up words cannot be learnt by heart, so they teach copying itself.
/// </summary>
public static class CopyingProse
{
    private static readonly string[] Things =
    [
        "cup", "lamp", "coat", "boat", "key", "map", "drum", "bell", "box", "kite", "rope", "hat", "jar", "pen", "stone", "leaf",
        "shell", "brush", "clock", "spoon", "basket", "ladder", "candle", "window", "button", "mirror", "blanket", "kettle",
    ];
    private static readonly string[] Places =
    ["river", "market", "station", "garden", "harbor", "hill", "library", "bridge", "forest", "school", "square", "farm", "shore", "village"];
    private static readonly string[] Adjectives =
    ["small", "long", "bright", "quiet", "heavy", "round", "blue", "green", "warm", "cold", "soft", "tall", "new", "red"];
    private static readonly string[] Onsets = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "tr", "st", "kl", "sh", "ch", "gr", "pl"];
    private static readonly string[] Vowels = ["a", "e", "i", "o", "u", "ai", "ou", "ee"];
    private static readonly string[] Codas = ["", "", "", "n", "r", "l", "s", "t", "m", "nd"];

    /// <summary>A made-up word of two or three syllables.</summary>
    public static string MadeUpWord(Random rng)
    {
        var sb = new StringBuilder();
        int syllables = rng.Next(2, 4);
        for (int i = 0; i < syllables; i++)
            sb.Append(Onsets[rng.Next(Onsets.Length)]).Append(Vowels[rng.Next(Vowels.Length)]).Append(i == syllables - 1 ? Codas[rng.Next(Codas.Length)] : "");
        return sb.ToString();
    }

    private static string Pick(Random rng, string[] words) => words[rng.Next(words.Length)];
    private static string Cap(string s) => char.ToUpperInvariant(s[0]) + s[1..];
    // Half the words are made up (only copying predicts them), half are real (the words a prompt asks for).
    private static string Word(Random rng) => rng.Next(2) == 0 ? MadeUpWord(rng) : Pick(rng, rng.Next(2) == 0 ? Things : Places);
    private static string Name(Random rng) => Cap(MadeUpWord(rng));

    /// <summary>One document: a word or name, used again one to four times.</summary>
    public static string Document(Random rng)
    {
        string w = Word(rng), n = Name(rng), m = Name(rng);
        string thing = Pick(rng, Things), place = Pick(rng, Places), adj = Pick(rng, Adjectives);
        string text = rng.Next(7) switch
        {
            0 => $"The word \"{w}\" names a {adj} {thing}. A {w} is easy to carry. I keep my {w} near the {place}.",
            1 => $"{n} lives near the {place}. Every morning {n} walks to the {place} with a {adj} {thing}. One day {n} gave the {thing} to {m}, and {m} thanked {n}.",
            2 => $"Use the word \"{w}\" in a sentence. The {w} is {adj}. Say it twice: {w}, {w}.",
            3 => $"{n} said \"{w}\". Then {m} said \"{w}\" too. Now everyone near the {place} says {w}.",
            4 => ThreeWords(rng),
            6 => TopicPiece(rng),
            _ => $"Write \"{w}\" in capital letters: {w.ToUpperInvariant()}. Write \"{Cap(w)}\" in small letters: {w}.",
        };
        // Whole documents in one case, as instruction-following answers sometimes must be.
        return rng.Next(8) switch { 0 => text.ToLowerInvariant(), 1 => text.ToUpperInvariant(), _ => text };
    }

    /// <summary>
    /// A request to write about something, named once without quotes, and a piece that names it again in its own
    /// sentences. Instruction following asks for "a short piece about bees" and grades whether the answer names bees;
    /// with quoted words only, the policy filled that place with any of the topics it had seen in SFT
    /// (docs/learning-notes.md, experiment 22).
    /// </summary>
    private static string TopicPiece(Random rng)
    {
        string t = Plural(rng), adj = Pick(rng, Adjectives), place = Pick(rng, Places), t2 = Plural(rng);
        return rng.Next(4) switch
        {
            0 => $"A short piece about {t}. {Cap(t)} are {adj}. People near the {place} like {t}.",
            1 => $"Write about {t}. I often think about {t}. The {adj} {t} stay in my mind.",
            2 => $"Tell me about {t} and not about {t2}. Here is a note on {t}: many {t} are {adj}, and {t} are easy to find.",
            _ => $"Some words about {t}. Every {place} has {t}. A {adj} day is better with {t}.",
        };
    }

    // Made-up plurals mostly (only copying predicts them), real ones sometimes.
    private static string Plural(Random rng) => PluralOf(rng.Next(3) == 0 ? Pick(rng, Things) : MadeUpWord(rng));

    /// <summary>The English plural of a regular noun ("box" → "boxes", "leaf" → "leaves", "kite" → "kites").</summary>
    public static string PluralOf(string noun) =>
        noun.EndsWith('f') ? noun[..^1] + "ves"
        : noun.EndsWith('s') || noun.EndsWith('x') || noun.EndsWith("sh") || noun.EndsWith("ch") ? noun + "es"
        : noun + "s";

    private static string ThreeWords(Random rng)
    {
        string a = Word(rng), b = Word(rng), c = Word(rng);
        return rng.Next(2) == 0
            ? $"Here are three words: {a}, {b} and {c}. The first word is {a}. The last word is {c}. The middle word is {b}."
            : $"Names on the list: {Cap(a)}, {Cap(b)}, {Cap(c)}. {Cap(c)} is last and {Cap(a)} is first.";
    }
}
