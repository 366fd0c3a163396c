using Microsoft.Extensions.DependencyInjection;
using Nemotron.Gym.Grains;
using Nemotron.Gym.TestSupport;
using Orleans.Hosting;
using Orleans.TestingHost;

namespace Nemotron.Gym.Grains.Tests;

/// <summary>A one-silo test cluster (Orleans' TestingHost) with the gym's grains and a run-state file of its own.</summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public static string StateFile { get; } = Path.Combine(Path.GetTempPath(), $"gym-grains-{Environment.ProcessId}.db");
    public TestCluster Cluster { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        var builder = new TestClusterBuilder(1);
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        builder.AddClientBuilderConfigurator<ClientConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo) => GymSilo.AddGrainServices(silo, new GymSiloOptions { PluginFolders = [RepoPaths.Plugins], StateStorage = "sqlite:" + StateFile });
    }

    private sealed class ClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(Microsoft.Extensions.Configuration.IConfiguration configuration, IClientBuilder client) => GymSilo.AddCommon(client.Services);
    }
}
