using Microsoft.Extensions.Hosting;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Runs;

namespace Nemotron.Gym.Runs.Tests;

/// <summary>
/// How a run rides out losing the run grain's silo: calls whose delivery failed are retried, and a transition whose
/// reply was lost is found in the stored state instead of being made twice. The grain is a real run grain on a silo;
/// only the failures are staged, by a forwarder that loses chosen calls before or after they reach it.
/// </summary>
public sealed class RunGrainCallTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("run-grain-call-").FullName;
    private IHost? _silo;

    public async ValueTask InitializeAsync() => _silo = await GymSilo.StartAsync(new GymSiloOptions
    {
        SiloPort = 21171, GatewayPort = 31071, PluginFolders = [], StateStorage = "sqlite:" + Path.Combine(_dir, "state.db"),
    });

    public async ValueTask DisposeAsync()
    {
        if (_silo != null) { await _silo.StopAsync(); _silo.Dispose(); }
        Directory.Delete(_dir, true);
    }

    private IRunGrain RealGrain(string id) => ((IGrainFactory)_silo!.Services.GetService(typeof(IGrainFactory))!).GetGrain<IRunGrain>(id);

    /// <summary>Forwards to the real grain; the calls named in <see cref="LoseBefore"/> / <see cref="LoseAfter"/> fail with
    /// a silo-unavailable error before reaching it, or after it made the change (the reply is lost).</summary>
    private sealed class Lossy(IRunGrain real) : IRunGrain
    {
        public Queue<string> LoseBefore { get; } = new();
        public Queue<string> LoseAfter { get; } = new();
        public List<string> Delivered { get; } = [];

        private async Task<RunInfo> Forward(string name, Func<Task<RunInfo>> call)
        {
            if (LoseBefore.TryPeek(out var b) && b == name) { LoseBefore.Dequeue(); throw new SiloUnavailableException($"{name}: silo gone before delivery"); }
            Delivered.Add(name);
            var info = await call();
            if (LoseAfter.TryPeek(out var a) && a == name) { LoseAfter.Dequeue(); throw new SiloUnavailableException($"{name}: silo gone before the reply"); }
            return info;
        }

        public Task<RunInfo> Create(string configYaml, int totalSteps) => Forward("Create", () => real.Create(configYaml, totalSteps));
        public Task<RunInfo> Restart(string configYaml, int totalSteps) => Forward("Restart", () => real.Restart(configYaml, totalSteps));
        public Task<RunInfo> Reconfigure(string configYaml) => Forward("Reconfigure", () => real.Reconfigure(configYaml));
        public Task<RunInfo> Start(int fromStep) => Forward("Start", () => real.Start(fromStep));
        public Task<RunInfo> ReportStep(int step, string? checkpoint) => Forward("ReportStep", () => real.ReportStep(step, checkpoint));
        public Task<RunInfo> Pause() => Forward("Pause", real.Pause);
        public Task<RunInfo> Complete(string finalCheckpoint) => Forward("Complete", () => real.Complete(finalCheckpoint));
        public Task<RunInfo> Fail(string error) => Forward("Fail", () => real.Fail(error));
        public Task<RunInfo?> Get() { Delivered.Add("Get"); return real.Get(); }
    }

    private static readonly TimeSpan Quick = TimeSpan.FromMilliseconds(5);

    [Fact]
    public async Task LostDeliveriesAreRetriedAndATransitionWhoseReplyWasLostIsNotMadeTwice()
    {
        var g = new Lossy(RealGrain("r1"));
        g.LoseBefore.Enqueue("Create");
        var info = await GymRun.CallRunGrain(g, x => x.Create("a: 1", 3), firstWait: Quick);
        Assert.Equal(RunStatus.Created, info.Status);

        info = await GymRun.CallRunGrain(g, x => x.Start(0), firstWait: Quick);
        // ReportStep is idempotent: made twice when its reply is lost, with the same result.
        g.LoseAfter.Enqueue("ReportStep");
        info = await GymRun.CallRunGrain(g, x => x.ReportStep(2, "/ckpt/2"), firstWait: Quick);
        Assert.Equal((RunStatus.Running, 2, "/ckpt/2"), (info.Status, info.Step, info.LastCheckpoint));
        Assert.Equal(2, g.Delivered.Count(d => d == "ReportStep"));

        // Complete landed, its reply was lost: the retry reads Completed back instead of completing again, which the
        // grain would refuse (Completed has no Complete transition).
        g.LoseAfter.Enqueue("Complete");
        info = await GymRun.CallRunGrain(g, x => x.Complete("/final"), i => i.Status == RunStatus.Completed, firstWait: Quick);
        Assert.Equal((RunStatus.Completed, "/final"), (info.Status, info.LastCheckpoint));
        Assert.Equal(1, g.Delivered.Count(d => d == "Complete"));
        var direct = await Assert.ThrowsAnyAsync<Exception>(() => RealGrain("r1").Complete("/again"));
        Assert.Contains("Completed", direct.Message);
    }

    [Fact]
    public async Task ErrorsOfTheGrainItselfAreNotRetriedAndTheLastLostDeliveryIsReported()
    {
        var g = new Lossy(RealGrain("r2"));
        await GymRun.CallRunGrain(g, x => x.Create("a: 1", 3), firstWait: Quick);
        // Pause from Created is an invalid transition: one delivery, the grain's own error.
        var e = await Assert.ThrowsAnyAsync<Exception>(() => GymRun.CallRunGrain(g, x => x.Pause(), i => i.Status == RunStatus.Paused, firstWait: Quick));
        Assert.IsNotType<SiloUnavailableException>(e);
        Assert.Equal(1, g.Delivered.Count(d => d == "Pause"));

        // A silo that never comes back: once the patience has run out, the delivery failure itself surfaces.
        for (int i = 0; i < 10_000; i++) g.LoseBefore.Enqueue("Start");
        var lost = await Assert.ThrowsAsync<SiloUnavailableException>(() => GymRun.CallRunGrain(g, x => x.Start(0), patience: TimeSpan.FromMilliseconds(300), firstWait: Quick));
        Assert.Contains("silo gone", lost.Message);
        // Retried for the patience (waits of 5, 10, 20, ... ms: about 6 tries in 300 ms), not a fixed count.
        Assert.InRange(10_000 - g.LoseBefore.Count, 4, 12);
        Assert.Equal(RunStatus.Created, (await RealGrain("r2").Get())!.Status);
    }
}
