using System.CommandLine;
using Nemotron.Gym.Cli.Arithmetic;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>gym data ...: writes the procedural corpora the demos train on.</summary>
internal static class DataCommands
{
    public static void AddTo(RootCommand root)
    {
        var data = new Command("data", "Write procedural training data.");
        var outDir = new Option<string>("--out") { Description = "Folder to write", Required = true };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var docs = new Option<int>("--pretrain-docs") { DefaultValueFactory = _ => new ArithmeticCorpusSpec().PretrainDocuments };
        var sft = new Option<int>("--sft-examples") { DefaultValueFactory = _ => new ArithmeticCorpusSpec().SftTrain };
        var arithmetic = new Command("arithmetic", "Multi-digit addition and subtraction, asked in words and digits: pretraining text (with products by one digit and short copying prose), chat data, held-out evaluation.")
            { outDir, seed, docs, sft };
        arithmetic.SetAction(parse => Cli.Run(() =>
        {
            var spec = new ArithmeticCorpusSpec().WithPretrainDocuments(parse.GetValue(docs)) with { SftTrain = parse.GetValue(sft) };
            ArithmeticCorpus.Write(parse.GetValue(outDir)!, spec, parse.GetValue(seed));
            AnsiConsole.MarkupLineInterpolated($"wrote {parse.GetValue(outDir)}: {spec.PretrainDocuments} pretraining documents, {spec.SftTrain} chat examples, {spec.EvalProblems} held-out problems");
            return 0;
        }));
        data.Subcommands.Add(arithmetic);
        root.Subcommands.Add(data);
    }
}
