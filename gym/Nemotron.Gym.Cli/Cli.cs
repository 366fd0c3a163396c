using Nemotron.Gym.Training.Config;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>Runs a command body, turning expected failures into one clear line and an exit code.</summary>
internal static class Cli
{
    public static Task<int> Run(Func<int> body) => Run(() => Task.FromResult(body()));

    public static async Task<int> Run(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (Exception e) when (e is CliException or ConfigException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException or ArgumentException)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {e.Message}");
            return 2;
        }
        catch (OperationCanceledException)
        {
            AnsiConsole.MarkupLine("[yellow]cancelled[/]");
            return 130;
        }
    }
}
