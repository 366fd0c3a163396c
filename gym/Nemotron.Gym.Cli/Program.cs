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
// Ctrl-C cancels the command's token and the command winds down: a run writes its checkpoint, a silo leaves its
// cluster. System.CommandLine ends the process with 130 if that takes over 2 s by default, which on a loaded machine
// cut a silo's graceful leave short (exit 130, seen under load) and could cut a run's pause short; give them the time
// they need. A run killed outright resumes from its last checkpoint (docs/reliability.md).
return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromMinutes(2) });
