using Nemotron.Gym.Grains;

namespace Nemotron.Gym.Grains.Tests;

public sealed class RunGrainTests(ClusterFixture fixture) : IClassFixture<ClusterFixture>
{
    [Fact]
    public async Task TheLifecycleIsPersistedAndInvalidChangesAreRefused()
    {
        string id = $"run-{Guid.NewGuid():N}";
        var run = fixture.Cluster.GrainFactory.GetGrain<IRunGrain>(id);
        Assert.Null(await run.Get());
        var e = await Assert.ThrowsAnyAsync<Exception>(() => run.Start(0));
        Assert.Contains("never created", e.Message);

        var info = await run.Create("steps: 10", 10);
        Assert.Equal(RunStatus.Created, info.Status);
        Assert.Equal(RunStatus.Created, (await run.Create("steps: 10", 10)).Status); // idempotent
        e = await Assert.ThrowsAnyAsync<Exception>(() => run.Create("steps: 11", 11));
        Assert.Contains("different config", e.Message);
        e = await Assert.ThrowsAnyAsync<Exception>(() => run.Pause());
        Assert.Contains("cannot Pause while Created", e.Message);

        await run.Start(0);
        await run.ReportStep(1, null);
        await run.ReportStep(2, "/runs/x/checkpoints/step-000002");
        info = await run.Pause();
        Assert.Equal(RunStatus.Paused, info.Status);
        e = await Assert.ThrowsAnyAsync<Exception>(() => run.ReportStep(3, null));
        Assert.Contains("while Paused", e.Message);

        // The state survives the activation: deactivate it and read it back from storage.
        await fixture.Cluster.GrainFactory.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        info = (await run.Get())!;
        Assert.Equal(RunStatus.Paused, info.Status);
        Assert.Equal(2, info.Step);
        Assert.Equal("/runs/x/checkpoints/step-000002", info.LastCheckpoint);

        info = await run.Start(2);
        Assert.Equal(RunStatus.Running, info.Status);
        info = await run.Complete("/runs/x/final");
        Assert.Equal(RunStatus.Completed, info.Status);
        Assert.Equal(10, info.Step);
        e = await Assert.ThrowsAnyAsync<Exception>(() => run.Start(0));
        Assert.Contains("cannot Start while Completed", e.Message);
    }

    [Fact]
    public async Task TheStateIsInTheSqliteFile()
    {
        string id = $"run-{Guid.NewGuid():N}";
        var run = fixture.Cluster.GrainFactory.GetGrain<IRunGrain>(id);
        await run.Create("x: 1", 5);
        await run.Start(0);
        var storage = new SqlGrainStorage("sqlite:" + ClusterFixture.StateFile);
        var all = await storage.ReadAllAsync("run");
        Assert.Contains(all, r => r.GrainId.Contains(id) && r.Json.Contains("\"Status\":1"));
    }
}
