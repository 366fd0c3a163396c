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
        catch (Exception e) when (e is CliException or ConfigException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException or ArgumentException
            or Nemotron.Gym.Plugins.EnvironmentCallException or Nemotron.Gym.Abstractions.TaskFormatException)
        {
            Error(e.Message);
            return 2;
        }
        catch (OperationCanceledException)
        {
            AnsiConsole.MarkupLine("[yellow]cancelled[/]");
            return 130;
        }
    }

    /// <summary>
    /// The one line a failed command ends with. Written whole (never wrapped at the console width, so a long path stays
    /// on the line that says what is wrong), on standard error.
    /// </summary>
    public static void Error(string message)
    {
        Console.Out.Flush();
        bool color = !Console.IsErrorRedirected;
        Console.Error.WriteLine((color ? "\e[31merror:\e[0m " : "error: ") + message);
    }
}
