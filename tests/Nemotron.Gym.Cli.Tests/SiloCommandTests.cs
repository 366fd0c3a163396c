using Nemotron.Gym.Conversation;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Runs;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Cli.Tests;

/// <summary>
/// `gym silo` as a worker: a real gym process joins the PostgreSQL-membership cluster of an in-process silo (the
/// trainer's side), serves episodes with its own plugins, and leaves cleanly on Ctrl-C (SIGINT).
/// </summary>
public sealed class SiloCommandTests(PostgresFixture pg) : IClassFixture<PostgresFixture>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-silo-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task AWorkerJoinsServesEpisodesWithItsOwnPluginsAndLeavesOnCtrlC()
    {
        var ct = TestContext.Current.CancellationToken;
        string db = await pg.Server.CreateDatabaseAsync(ct: ct);
        var trainerSide = await GymSilo.StartAsync(new GymSiloOptions
        {
            Membership = "postgres", Postgres = db, ClusterId = "workers", Address = "127.0.0.1", SiloPort = Ports.Free(), GatewayPort = Ports.Free(),
            PluginFolders = [RepoPaths.Plugins],
        }, ct, new AlternatingEpisodePlacement().UseOn);
        try
        {
            int port = Ports.Free();
            using var worker = GymProcess.Start(_dir, "silo", "--postgres", db, "--cluster-id", "workers", "--silo-port", port.ToString(),
                "--gateway-port", Ports.Free().ToString(), "--address", "127.0.0.1");
            await worker.WaitForAsync("joined", TimeSpan.FromSeconds(90));
            Assert.Contains($"cluster 'workers' at 127.0.0.1:{port}", worker.Output);
            Assert.Contains("math", worker.Output);

            var grains = trainerSide.Services.GetRequiredService<IGrainFactory>();
            var management = grains.GetGrain<IManagementGrain>(0);
            var until = DateTime.UtcNow.AddSeconds(60);
            SiloAddress? workerSilo = null;
            while (workerSilo == null)
            {
                workerSilo = (await management.GetHosts(onlyActive: true)).Keys.FirstOrDefault(s => s.Endpoint.Port == port);
                if (workerSilo == null)
                {
                    Assert.True(DateTime.UtcNow < until, "the trainer's silo never saw the worker as active");
                    await Task.Delay(250, ct);
                }
            }

            // Twenty math episodes, half of them on the worker: opened and answered there with its plugins, counted
            // while they are live (a graded episode deactivates), then graded.
            var source = await GrainEpisodeSource.CreateAsync(grains, "silo-test", [new TaskSetSpec("math", new Dictionary<string, string>(), "train", 10, 1)]);
            var live = new List<Nemotron.Gym.Training.Grpo.IEpisode>();
            foreach (var task in source.Tasks)
                for (int g = 0; g < 2; g++)
                {
                    var ep = await source.OpenAsync(task, g, seed: g, ct);
                    await ep.StepAsync(AssistantTurn.Parse("The answer is \\boxed{7}.<|end|>", true), final: true, ct);
                    live.Add(ep);
                }
            var onWorker = (await management.GetDetailedGrainStatistics(hostsIds: [workerSilo]))
                .Count(s => s.GrainId.Type.ToString() == "episode");
            Assert.True(onWorker >= 5, $"episodes on the worker: {onWorker}");
            var grades = await Task.WhenAll(live.Select(ep => ep.GradeAsync(truncated: false, ct)));
            Assert.Equal(20, grades.Length);
            Assert.All(grades, g => Assert.False(g.Components.ContainsKey("environment_error"), g.Reason));
            Assert.Equal(0, source.Replays);

            // Ctrl-C: the worker leaves gracefully and says so; the membership table marks it dead.
            worker.Interrupt();
            Assert.True(worker.WaitForExit(TimeSpan.FromSeconds(60)), "the worker did not stop after Ctrl-C:\n" + worker.Output);
            Assert.Equal(0, worker.ExitCode);
            Assert.Contains("left the cluster", worker.Output);
            var rows = await new PostgresMembershipTable(db, "workers").ReadAll();
            Assert.Contains(rows.Members, m => m.Item1.SiloAddress.Endpoint.Port == port && m.Item1.Status == SiloStatus.Dead);
        }
        finally
        {
            await trainerSide.StopAsync(CancellationToken.None);
            trainerSide.Dispose();
        }
    }

    [Fact]
    public void AnUnreachableMembershipDatabaseIsAClearError()
    {
        int closed = Ports.Free(); // nothing listens there
        var (code, output) = GymProcess.Run(_dir, "silo", "--postgres", $"Host=127.0.0.1;Port={closed};Username=x;Password=y;Database=z;Timeout=3",
            "--silo-port", Ports.Free().ToString(), "--gateway-port", Ports.Free().ToString(), "--address", "127.0.0.1");
        Assert.Equal(2, code);
        Assert.Contains("could not join cluster 'nemotron-gym'", output);
    }
}
