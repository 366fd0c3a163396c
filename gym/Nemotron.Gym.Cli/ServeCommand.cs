using System.CommandLine;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Serve;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>
/// gym serve: an OpenAI-compatible endpoint (POST /v1/chat/completions, GET /v1/models, GET /health) over
/// one checkpoint, with concurrent requests decoded together. Ctrl-C stops it.
/// </summary>
internal static class ServeCommand
{
    public static void AddTo(RootCommand root)
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint folder", Required = true };
        var host = new Option<string>("--host") { Description = "Address to bind; anything but loopback requires --api-key", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0: any free port)", DefaultValueFactory = _ => 8000 };
        var apiKey = new Option<string?>("--api-key") { Description = "Clients must send Authorization: Bearer KEY (default: $NEMOTRON_GYM_API_KEY)" };
        var modelName = new Option<string?>("--model-name") { Description = "Model id clients name (default: the checkpoint folder's name)" };
        var maxBatch = new Option<int>("--max-batch") { Description = "Rows decoded together (a request takes n rows)", DefaultValueFactory = _ => 32 };
        var maxPending = new Option<int>("--max-pending") { Description = "Requests running or waiting before new ones get 429", DefaultValueFactory = _ => 256 };
        var maxTokens = new Option<int>("--max-tokens-limit") { Description = "Largest max_tokens a request may ask (0: the model's context)", DefaultValueFactory = _ => 0 };
        var maxBytes = new Option<long>("--max-request-bytes") { Description = "Largest request body (413 beyond)", DefaultValueFactory = _ => 1 << 20 };
        var cmd = new Command("serve", "Serve a checkpoint as an OpenAI-compatible chat-completions endpoint.")
            { checkpoint, host, port, apiKey, modelName, maxBatch, maxPending, maxTokens, maxBytes, StageCommands.Device };
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            string dir = Path.GetFullPath(parse.GetValue(checkpoint)!);
            var options = new ServeOptions
            {
                Host = parse.GetValue(host)!, Port = parse.GetValue(port),
                ApiKey = parse.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("NEMOTRON_GYM_API_KEY"),
                ModelName = parse.GetValue(modelName) ?? Path.GetFileName(dir.TrimEnd(Path.DirectorySeparatorChar)),
                MaxBatch = parse.GetValue(maxBatch), MaxPendingRequests = parse.GetValue(maxPending),
                MaxTokensLimit = parse.GetValue(maxTokens), MaxRequestBytes = parse.GetValue(maxBytes),
            }.Validate();
            using var backend = Backends.Create(parse.GetValue(StageCommands.Device) ?? "auto", 0);
            var (model, tokenizer) = Checkpoint.Load(dir, backend);
            using (model)
            {
                ServeHost server;
                try { server = await ServeHost.StartAsync(model, tokenizer, options, ct); }
                catch (IOException e) { throw new CliException($"cannot listen on {options.Host}:{options.Port}: {e.Message}"); }
                await using (server)
                {
                    AnsiConsole.MarkupLineInterpolated(
                        $"[green]serving[/] '{options.ModelName}' ({model.Config.ParameterCount:N0} parameters, context {model.Config.Context}) at {server.BaseAddress}v1 (max batch {options.MaxBatch}, KV cache {server.Batcher.KvCacheBytes / (1 << 20)} MiB{(options.ApiKey != null ? ", API key required" : "")}); Ctrl-C stops");
                    try { await Task.Delay(Timeout.Infinite, ct); }
                    catch (OperationCanceledException) { }
                    AnsiConsole.MarkupLine("stopping ...");
                }
            }
            return 0;
        }));
        root.Subcommands.Add(cmd);
    }
}
