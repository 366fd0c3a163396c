using System.CommandLine;
using Nemotron.Gym.Cli;
using Spectre.Console;

// The `gym` tool. Each command group lives in its own file and adds itself here.
if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 240; // logs: do not wrap at 80 columns
var root = new RootCommand("Nemotron.Gym: pretrain, fine-tune and post-train language models with RL.");
StageCommands.AddTo(root);
DataCommands.AddTo(root);
DemoCommand.AddTo(root);
RlCommands.AddTo(root);
EvalCommand.AddTo(root);
EnvCommands.AddTo(root);
GymRunCommands.AddTo(root);
SiloCommand.AddTo(root);
ServeCommand.AddTo(root);
UiCommand.AddTo(root);
SandboxCommands.AddTo(root);
// Plugins run in worker processes; --in-process (any command) keeps them in this process, to debug one in an IDE.
var inProcess = new Option<bool>("--in-process") { Description = "Run environment plugins inside this process (for debugging) instead of in worker processes", Recursive = true };
root.Options.Add(inProcess);
var parsed = root.Parse(args);
if (parsed.GetValue(inProcess)) Nemotron.Gym.PluginWorker.PluginWorkerSettings.Default = Nemotron.Gym.PluginWorker.PluginWorkerSettings.Default with { InProcess = true };
return await parsed.InvokeAsync();
