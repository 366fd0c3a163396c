using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Runs;
using Nemotron.Gym.TestSupport;
using Orleans.Runtime.Placement;

namespace Nemotron.Gym.Cli.Tests;

/// <summary>
/// `gym silo` as a worker: a real gym process joins the PostgreSQL-membership cluster of an in-process silo (the
/// trainer's side), serves episodes with its own plugins, and leaves cleanly on Ctrl-C (SIGINT).
/// </summary>
public sealed class SiloCommandTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-silo-").FullName;
    private PostgresServer? _pg;

    public async ValueTask InitializeAsync() => _pg = await PostgresServer.StartAsync();

    public async ValueTask DisposeAsync()
    {
        if (_pg != null) await _pg.DisposeAsync();
        Directory.Delete(_dir, true);
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>Episodes alternate over the silos (Orleans' default placement keeps them local while both are idle);
    /// everything else stays on the calling silo.</summary>
    private sealed class Alternate : PlacementStrategy;

    private sealed class AlternateDirector : IPlacementDirector
    {
        private int _next;
        public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
        {
            var silos = context.GetCompatibleSilos(target).OrderBy(s => s.ToString(), StringComparer.Ordinal).ToArray();
            if (target.GrainIdentity.Type.ToString() == "episode")
                return Task.FromResult(silos[(int)((uint)Interlocked.Increment(ref _next) % silos.Length)]);
            return Task.FromResult(silos.Contains(context.LocalSilo) ? context.LocalSilo : silos[0]);
        }
    }

    /// <summary>The gym tool as a long-running child process whose output is collected line by line.</summary>
    private sealed class GymChild : IDisposable
    {
        private readonly Process _p;
        private readonly List<string> _lines = [];
        public GymChild(string dir, params string[] args)
        {
            var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add(Path.Combine(RepoPaths.GymBuild, "gym.dll"));
            foreach (var a in args) psi.ArgumentList.Add(a);
            _p = Process.Start(psi)!;
            _p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (_lines) _lines.Add(e.Data); };
            _p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_lines) _lines.Add(e.Data); };
            _p.BeginOutputReadLine();
            _p.BeginErrorReadLine();
        }
        public string Output { get { lock (_lines) return string.Join("\n", _lines); } }
        public int Pid => _p.Id;
        public bool HasExited => _p.HasExited;
        public int ExitCode => _p.ExitCode;
        public async Task WaitForAsync(string text, TimeSpan timeout)
        {
            var until = DateTime.UtcNow + timeout;
            while (!Output.Contains(text, StringComparison.Ordinal))
            {
                if (_p.HasExited) throw new Xunit.Sdk.XunitException($"gym exited ({_p.ExitCode}) before printing '{text}':\n{Output}");
                if (DateTime.UtcNow > until) throw new TimeoutException($"no '{text}' after {timeout}:\n{Output}");
                await Task.Delay(100);
            }
        }
        public bool WaitForExit(TimeSpan timeout) => _p.WaitForExit(timeout);
        /// <summary>Ctrl-C: SIGINT through libc (no dependence on a kill binary being installed).</summary>
        public void Interrupt()
        {
            if (SendSignal(_p.Id, 2) != 0) throw new InvalidOperationException($"kill({_p.Id}, SIGINT) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }
        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
        private static extern int SendSignal(int pid, int signal);
        public void Dispose()
        {
            if (!_p.HasExited) _p.Kill(true);
            _p.Dispose();
        }
    }

    [Fact]
    public async Task AWorkerJoinsServesEpisodesWithItsOwnPluginsAndLeavesOnCtrlC()
    {
        var ct = TestContext.Current.CancellationToken;
        string db = await _pg!.CreateDatabaseAsync(ct: ct);
        var trainerSide = await GymSilo.StartAsync(new GymSiloOptions
        {
            Membership = "postgres", Postgres = db, ClusterId = "workers", Address = "127.0.0.1", SiloPort = FreePort(), GatewayPort = FreePort(),
            PluginFolders = [RepoPaths.Plugins],
        }, ct, silo =>
        {
            silo.Services.AddSingleton<PlacementStrategy, Alternate>();
            silo.Services.AddPlacementDirector<Alternate>(_ => new AlternateDirector());
        });
        try
        {
            int port = FreePort();
            using var worker = new GymChild(_dir, "silo", "--postgres", db, "--cluster-id", "workers", "--silo-port", port.ToString(),
                "--gateway-port", FreePort().ToString(), "--address", "127.0.0.1");
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
            var live = new List<Nemotron.Gym.Policy.Rl.IEpisode>();
            foreach (var task in source.Tasks)
                for (int g = 0; g < 2; g++)
                {
                    var ep = await source.OpenAsync(task, g, seed: g, ct);
                    await ep.StepAsync("The answer is \\boxed{7}.<|end|>", final: true, ct);
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
        int closed = FreePort(); // nothing listens there
        var (code, output) = GymProcess.Run(_dir, "silo", "--postgres", $"Host=127.0.0.1;Port={closed};Username=x;Password=y;Database=z;Timeout=3",
            "--silo-port", FreePort().ToString(), "--gateway-port", FreePort().ToString(), "--address", "127.0.0.1");
        Assert.Equal(2, code);
        Assert.Contains("could not join cluster 'nemotron-gym'", output);
    }
}
