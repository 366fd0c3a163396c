using System.Text.Json.Nodes;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Environments.Arithmetic;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model.Sampling;

namespace Nemotron.Gym.Cli.Arithmetic;

/// <summary>Sizes of the demo corpus.</summary>
/// <param name="ProseDocuments">Documents of <see cref="CopyingProse"/> spread evenly among the pretraining documents.</param>
/// <param name="TimesDocuments">Documents of <see cref="TimesPractice"/> (products by one digit) spread the same way.</param>
public sealed record ArithmeticCorpusSpec(int PretrainDocuments = 60_000, int PretrainValidDocuments = 2_000, int SftTrain = 20_000, int SftValid = 500, int EvalProblems = 500, int MaxDigits = 3,
    int ProseDocuments = 15_000, int ProseValidDocuments = 500, int TimesDocuments = 10_000, int TimesValidDocuments = 300)
{
    /// <summary>This corpus with <paramref name="documents"/> arithmetic documents, prose and products keeping their shares.</summary>
    public ArithmeticCorpusSpec WithPretrainDocuments(int documents) => this with
    {
        PretrainDocuments = documents,
        ProseDocuments = (int)((long)documents * ProseDocuments / PretrainDocuments),
        TimesDocuments = (int)((long)documents * TimesDocuments / PretrainDocuments),
    };
}

/// <summary>
/// Writes the demo task's data: pretraining text (train/valid), chat JSONL for fine-tuning (train/valid)
/// and held-out evaluation problems. Training files only ever contain training-split problems; the
/// held-out files only held-out ones.
/// </summary>
public static class ArithmeticCorpus
{
    /// <summary>File names inside the data folder.</summary>
    public const string PretrainTrain = "pretrain.train.txt", PretrainValid = "pretrain.valid.txt",
        SftTrain = "sft.train.jsonl", SftValid = "sft.valid.jsonl", Eval = "eval.heldout.jsonl";

    /// <summary>Writes every file into <paramref name="directory"/>.</summary>
    public static void Write(string directory, ArithmeticCorpusSpec spec, int seed)
    {
        Directory.CreateDirectory(directory);
        WriteText(Path.Combine(directory, PretrainTrain), spec.PretrainDocuments, [(spec.ProseDocuments, CopyingProse.Document), (spec.TimesDocuments, TimesPractice.Document)],
            seed * 7 + 1, heldOut: false, spec.MaxDigits);
        WriteText(Path.Combine(directory, PretrainValid), spec.PretrainValidDocuments, [(spec.ProseValidDocuments, CopyingProse.Document), (spec.TimesValidDocuments, TimesPractice.Document)],
            seed * 7 + 2, heldOut: true, spec.MaxDigits);
        WriteChat(Path.Combine(directory, SftTrain), spec.SftTrain, seed * 7 + 3, heldOut: false, spec.MaxDigits);
        WriteChat(Path.Combine(directory, SftValid), spec.SftValid, seed * 7 + 4, heldOut: true, spec.MaxDigits);
        var rng = new Random(Sampler.StreamSeed(seed * 7 + 5, 0));
        using var eval = new StreamWriter(Path.Combine(directory, Eval));
        var seen = new HashSet<string>();
        while (seen.Count < spec.EvalProblems)
        {
            var p = ArithmeticProblem.SampleFromSplit(rng, heldOut: true, spec.MaxDigits);
            if (!seen.Add(p.Key)) continue;
            eval.WriteLine(new JsonObject { ["question"] = p.Question(rng), ["a"] = p.A, ["op"] = p.Op.ToString(), ["b"] = p.B, ["answer"] = p.Answer.ToString() }.ToJsonString(JsonText.Compact));
        }
    }

    /// <summary>
    /// The arithmetic documents, with each kind of <paramref name="extra"/> document spread evenly among them (after
    /// arithmetic document i, as many as bring that kind to its share of i + 1).
    /// </summary>
    private static void WriteText(string path, int documents, (int Count, Func<Random, string> Document)[] extra, int seed, bool heldOut, int maxDigits)
    {
        var rng = new Random(Sampler.StreamSeed(seed, 0));
        // Each kind has its own stream: the arithmetic documents are the same with or without the others.
        var extraRng = extra.Select((_, k) => new Random(Sampler.StreamSeed(seed, k + 1))).ToArray();
        var written = new int[extra.Length];
        using var w = new StreamWriter(path);
        for (int i = 0; i < documents; i++)
        {
            w.WriteLine(ArithmeticProblem.SampleFromSplit(rng, heldOut, maxDigits).ToDocument(rng));
            w.WriteLine();
            for (int k = 0; k < extra.Length; k++)
                for (; (long)(written[k] + 1) * documents <= (long)(i + 1) * extra[k].Count; written[k]++)
                {
                    w.WriteLine(extra[k].Document(extraRng[k]));
                    w.WriteLine();
                }
        }
    }

    private static void WriteChat(string path, int count, int seed, bool heldOut, int maxDigits)
    {
        var rng = new Random(Sampler.StreamSeed(seed, 0));
        using var w = new StreamWriter(path);
        for (int i = 0; i < count; i++)
            w.WriteLine(ChatJsonl.ToLine(ArithmeticProblem.SampleFromSplit(rng, heldOut, maxDigits).ToConversation(rng)));
    }

    /// <summary>Reads the evaluation problems (question text and expected answer).</summary>
    public static List<(string Question, string Answer)> ReadEval(string path)
    {
        var list = new List<(string, string)>();
        int lineNo = 0;
        Nemotron.Gym.Conversation.StrictText.RequireUtf8(path);
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject o;
            try { o = JsonNode.Parse(line) as JsonObject ?? throw new InvalidDataException($"{path}:{lineNo}: expected a JSON object {{\"question\": ..., \"answer\": ...}}"); }
            catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{path}:{lineNo}: not valid JSON ({e.Message})", e); }
            string Text(string field) => o[field] switch
            {
                null => throw new InvalidDataException($"{path}:{lineNo}: field '{field}' is missing"),
                JsonValue v when v.TryGetValue(out string? s) => s,
                var other => throw new InvalidDataException($"{path}:{lineNo}: field '{field}' is {other.ToJsonString()}; expected text (a JSON string)"),
            };
            list.Add((Text("question"), Text("answer")));
        }
        return list;
    }
}
