using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Reliability.Tests;

/// <summary>
/// A short kill soak in the suite (the 20-kill one is `benchmarks soak`): `gym rl` killed with SIGKILL at random
/// moments and resumed each time stores every (step, task, sample) once and every step's metrics once.
/// </summary>
public sealed class SoakTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-soak-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task KilledAtRandomMomentsAndResumedEachTimeTheRunStoresEveryRolloutAndStepOnce()
    {
        // NG_SOAK_KILLS=20 runs the full soak here too (the same as `benchmarks soak`).
        int kills = int.TryParse(Environment.GetEnvironmentVariable("NG_SOAK_KILLS"), out int k) && k > 0 ? k : 4;
        var report = await KillSoak.RunAsync(_dir, kills, steps: Math.Max(60, 20 * kills), seed: 11, maxDelay: TimeSpan.FromMilliseconds(400),
            log: TestContext.Current.TestOutputHelper!.WriteLine);
        TestContext.Current.TestOutputHelper!.WriteLine(report.ToString());
        Assert.True(report.Clean, report.ToString());
    }
}
