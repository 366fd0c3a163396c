using System.CommandLine;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Training.Config;
using Nemotron.Gym.Cli.Arithmetic;
using Nemotron.Gym.Model.Sampling;
using Nemotron.Gym.Training;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>gym pretrain | sft | generate.</summary>
internal static class StageCommands
{
    public static readonly Option<string[]> Set = new("--set") { Description = "Override a config key, e.g. --set train.lr=1e-3 (repeatable)" };
    public static readonly Option<string?> Device = new("--device") { Description = "cpu, cuda or auto (overrides the config)" };

    public static void AddTo(RootCommand root)
    {
        root.Subcommands.Add(StageCommand<PretrainConfig>("pretrain", "Pretrain a policy from scratch: next-token prediction over packed text.",
            (cfg, be, obs, ct) => Stages.Pretrain(cfg, be, obs, ct)));
        root.Subcommands.Add(StageCommand<SftConfig>("sft", "Supervised fine-tuning on chat JSONL; the loss covers assistant tokens only.",
            (cfg, be, obs, ct) => Stages.Sft(cfg, be, obs, ct)));
        root.Subcommands.Add(Generate());
    }

    private static Command StageCommand<T>(string name, string description, Func<T, IComputeBackend, ITrainingObserver, CancellationToken, TrainingOutcome> run)
        where T : StageConfig, new()
    {
        var config = new Option<string>("--config", "-c") { Description = "YAML config file", Required = true };
        var cmd = new Command(name, description) { config, Set, Device };
        cmd.SetAction((parse, ct) => Cli.Run(() =>
        {
            var overrides = (parse.GetValue(Set) ?? []).ToList();
            if (parse.GetValue(Device) is { } d) overrides.Add($"device={d}");
            var cfg = YamlConfig.Load<T>(parse.GetValue(config), overrides);
            using var backend = Backends.Create(cfg.Device, cfg.Threads);
            var outcome = run(cfg, backend, new ConsoleObserver(name), ct);
            if (outcome.Interrupted) return 130;
            AnsiConsole.MarkupLineInterpolated($"[green]{name} done[/]: {outcome.Steps} steps, held-out loss {outcome.FinalValidationLoss:F4}; checkpoint {outcome.FinalCheckpoint}");
            return 0;
        }));
        return cmd;
    }

    private static Command Generate()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint folder", Required = true };
        var prompt = new Option<string[]>("--prompt", "-p") { Description = "A user message to answer (repeatable)" };
        var eval = new Option<string?>("--eval") { Description = "A JSONL file of {question, answer}: prints exact-match accuracy" };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0f };
        var topK = new Option<int>("--top-k") { DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { DefaultValueFactory = _ => 1f };
        var maxTokens = new Option<int>("--max-tokens") { DefaultValueFactory = _ => 160 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var show = new Option<int>("--show") { Description = "With --eval: generations to print", DefaultValueFactory = _ => 5 };
        var cmd = new Command("generate", "Generate answers from a checkpoint, or score it on an evaluation file.")
            { checkpoint, prompt, eval, temperature, topK, topP, maxTokens, seed, show, Device };
        cmd.SetAction((parse, ct) => Cli.Run(() =>
        {
            var sampling = new SamplingParams(parse.GetValue(temperature), parse.GetValue(topK), parse.GetValue(topP));
            try { sampling.Validate(); } catch (ArgumentException e) { throw new CliException(e.Message); }
            using var backend = Backends.Create(parse.GetValue(Device) ?? "auto", 0);
            var (model, tokenizer) = Checkpoint.Load(parse.GetValue(checkpoint)!, backend);
            using (model)
            {
                var template = new ChatTemplate(tokenizer);
                if (parse.GetValue(eval) is { } evalPath)
                {
                    var items = ArithmeticCorpus.ReadEval(evalPath);
                    var result = ExactMatchEval.Run(model, template, items, sampling, parse.GetValue(maxTokens), parse.GetValue(seed), ct);
                    Print(result.Items.Take(parse.GetValue(show)));
                    AnsiConsole.MarkupLineInterpolated($"exact-match accuracy: [bold]{result.Accuracy:P1}[/] ({result.Correct}/{result.Total})");
                    return 0;
                }
                var prompts = parse.GetValue(prompt) ?? [];
                if (prompts.Length == 0) throw new CliException("give --prompt TEXT (repeatable) or --eval FILE");
                var s = tokenizer.Specials;
                using var sampler = new Sampler(model);
                var encoded = prompts.Select(p => template.RenderGenerationPrompt(new ChatTranscript([Message.User(p)]))).ToList();
                var gens = sampler.Generate(encoded, new GenerationOptions(parse.GetValue(maxTokens), sampling, parse.GetValue(seed), [s.EndOfTurn, s.EndOfText]), ct);
                for (int i = 0; i < prompts.Length; i++)
                {
                    var output = AssistantTurn.Parse(tokenizer.Decode(gens[i].Tokens));
                    AnsiConsole.MarkupLineInterpolated($"[bold]user:[/] {prompts[i]}");
                    if (output.Reasoning != null) AnsiConsole.MarkupLineInterpolated($"[grey]think: {output.Reasoning}[/]");
                    AnsiConsole.MarkupLineInterpolated($"[bold]assistant:[/] {output.Content}  [grey]({gens[i].Tokens.Length} tokens, {gens[i].Finish.ToString().ToLowerInvariant()}, mean logprob {gens[i].LogProbs.Average():F3})[/]");
                }
                return 0;
            }
        }));
        return cmd;
    }

    public static void Print(IEnumerable<EvalItem> items)
    {
        foreach (var item in items)
        {
            AnsiConsole.MarkupLineInterpolated($"[bold]Q:[/] {item.Question}");
            AnsiConsole.MarkupLineInterpolated($"[grey]  think: {item.Reasoning}[/]");
            AnsiConsole.MarkupLine($"  answer: {Markup.Escape(item.Answer)}  (expected {Markup.Escape(item.Expected)}) {(item.Correct ? "[green]correct[/]" : "[red]wrong[/]")}");
        }
    }
}
