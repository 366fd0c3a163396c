using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// The kill soak: `gym rl` on a small config killed with SIGKILL at random moments and resumed each time, then the
/// store and the run folder checked (every (step, task, sample) once, every step's metrics once). Prints the counts;
/// exit code 1 when anything is lost or doubled.
/// </summary>
public sealed class SoakBenchmark : IBenchmark
{
    public string Name => "soak";
    public string Description => "gym rl killed with SIGKILL at random moments and resumed: [kills=20] [steps=400] [seed=1] [max-delay-ms=400]";

    public async Task<int> RunAsync(string[] args)
    {
        int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture) : fallback;
        int kills = Arg(0, 20), steps = Arg(1, 400), seed = Arg(2, 1), maxDelayMs = Arg(3, 400);
        var work = Directory.CreateTempSubdirectory("gym-soak-").FullName;
        try
        {
            Console.WriteLine($"soak: {kills} kills, {steps} steps, seed {seed}, each 0-2 steps and up to {maxDelayMs} ms into an attempt; work folder {work}");
            var report = await KillSoak.RunAsync(work, kills, steps, seed, TimeSpan.FromMilliseconds(maxDelayMs), Console.WriteLine);
            Console.WriteLine(report);
            return report.Clean ? 0 : 1;
        }
        finally
        {
            Directory.Delete(work, true);
        }
    }
}
