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
return await root.Parse(args).InvokeAsync();
