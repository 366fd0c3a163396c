using System.Diagnostics;
using Nemotron.Gym.Training;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>Prints training progress: a line every few seconds (and the first and last steps).</summary>
internal sealed class ConsoleObserver(string stage, double secondsBetweenLines = 5) : ITrainingObserver
{
    private readonly Stopwatch _sinceLine = Stopwatch.StartNew();
    private bool _first = true;

    public void OnStep(StepReport r)
    {
        if (!_first && r.Step != r.TotalSteps && _sinceLine.Elapsed.TotalSeconds < secondsBetweenLines) return;
        _first = false;
        _sinceLine.Restart();
        AnsiConsole.MarkupLineInterpolated(
            $"[blue]{stage}[/] step {r.Step,5}/{r.TotalSteps} | loss [bold]{r.Loss:F4}[/] | lr {r.LearningRate:0.0e+0} | grad {r.GradNorm:F2} | {r.TokensPerSecond,7:N0} tok/s | {Format(r.Elapsed)} elapsed, ETA {Format(r.Remaining)}");
    }

    public void OnEval(EvalReport r) =>
        AnsiConsole.MarkupLineInterpolated($"[blue]{stage}[/] step {r.Step,5} | held-out loss [bold]{r.Loss:F4}[/] (best {r.BestLoss:F4}){(r.Improved ? " *" : "")}");

    public void OnMessage(string message) => AnsiConsole.MarkupLineInterpolated($"[blue]{stage}[/] {message}");

    public static string Format(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes}m{t.Seconds:D2}s" : $"{t.TotalSeconds:F0}s";
}
