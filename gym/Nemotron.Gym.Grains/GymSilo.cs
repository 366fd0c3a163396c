using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Runtime.Hosting;
using Orleans.Serialization;

namespace Nemotron.Gym.Grains;

/// <summary>
/// How a silo joins its cluster: membership, ports, cluster id and the address it advertises. The run config's
/// `cluster:` section binds to this class and `gym silo` fills it from its options, so the keys exist once.
/// </summary>
public class ClusterSettings
{
    /// <summary>"localhost" (a single in-process silo, the embedded default) or "postgres" (membership in PostgreSQL).</summary>
    public string Membership { get; set; } = "localhost";
    /// <summary>PostgreSQL connection string for membership: postgres.</summary>
    public string Postgres { get; set; } = "";
    /// <summary>Silo-to-silo port.</summary>
    public int SiloPort { get; set; } = 11111;
    /// <summary>Gateway port.</summary>
    public int GatewayPort { get; set; } = 30000;
    /// <summary>Cluster id (silos with the same id and membership form one cluster).</summary>
    public string ClusterId { get; set; } = "nemotron-gym";
    /// <summary>
    /// The address other silos reach this one at (membership: postgres): an IP address, a host name, or "auto" (this
    /// machine's first non-loopback IPv4 address of a running interface; loopback when it has none). A loopback
    /// address keeps the silo to this machine; any other one listens on every interface.
    /// </summary>
    public string Address { get; set; } = "auto";
    /// <summary>
    /// TLS for silo-to-silo and client traffic (membership: postgres): this silo's certificate, a PEM file (with
    /// <see cref="TlsKey"/>) or a PKCS#12 file (.pfx/.p12, key inside). Empty: no TLS, which a silo listening beyond
    /// loopback refuses unless <see cref="Insecure"/> is set.
    /// </summary>
    public string TlsCertificate { get; set; } = "";
    /// <summary>The private key of a PEM <see cref="TlsCertificate"/>.</summary>
    public string TlsKey { get; set; } = "";
    /// <summary>
    /// A CA certificate (PEM): peers must present a certificate it issued. Empty: peers must present the same
    /// certificate as this silo (one certificate shared by the cluster). Either way every connection is mutual TLS.
    /// </summary>
    public string TlsCa { get; set; } = "";
    /// <summary>Listen beyond loopback without TLS: any machine that reaches the ports can join the cluster or call grains.</summary>
    public bool Insecure { get; set; }

    /// <summary>The first bad value as (key, problem), or null when the settings are usable.</summary>
    public (string Key, string Problem)? Check()
    {
        if (TlsCertificate.Length == 0 && (TlsKey.Length > 0 || TlsCa.Length > 0)) return ("tls_certificate", "tls_key and tls_ca need a tls_certificate");
        foreach (var (key, file) in new[] { ("tls_certificate", TlsCertificate), ("tls_key", TlsKey), ("tls_ca", TlsCa) })
            if (file.Length > 0 && !File.Exists(file)) return (key, $"{file}: no such file");
        if (Membership is not ("localhost" or "postgres")) return ("membership", $"expected localhost or postgres, got '{Membership}'");
        if (Membership == "postgres" && string.IsNullOrWhiteSpace(Postgres)) return ("postgres", "a connection string is required with membership: postgres");
        if (SiloPort is < 1 or > 65535) return ("silo_port", $"expected 1-65535, got {SiloPort}");
        if (GatewayPort is < 1 or > 65535) return ("gateway_port", $"expected 1-65535, got {GatewayPort}");
        return null;
    }
}

/// <summary>A silo's cluster settings plus what it keeps locally: run state and plugin folders.</summary>
public sealed class GymSiloOptions : ClusterSettings
{
    /// <summary>Run-state storage: "sqlite:PATH" or "postgres:CONNECTION" (default with postgres membership: the same database).</summary>
    public string StateStorage { get; set; } = "sqlite:runs/gym-state.db";
    /// <summary>Plugin folders.</summary>
    public List<string> PluginFolders { get; set; } = [.. Plugins.PluginLoader.DefaultSearchPaths()];
    /// <summary>The silo's sandbox pool for its environments; null for none.</summary>
    public SiloSandboxOptions? Sandbox { get; set; }
    /// <summary>The judge endpoint environments on this silo may use (through its judge pool); null or no base URL: none.</summary>
    public Judges.JudgeSettings? Judge { get; set; }
    /// <summary>How plugins are hosted (worker processes, or this process with --in-process).</summary>
    public PluginWorker.PluginWorkerSettings PluginHosting { get; set; } = PluginWorker.PluginWorkerSettings.Default;

    /// <summary>Options that join the cluster <paramref name="cluster"/> describes.</summary>
    public static GymSiloOptions For(ClusterSettings cluster) => new()
    {
        Membership = cluster.Membership, Postgres = cluster.Postgres, SiloPort = cluster.SiloPort, GatewayPort = cluster.GatewayPort,
        ClusterId = cluster.ClusterId, Address = cluster.Address,
        TlsCertificate = cluster.TlsCertificate, TlsKey = cluster.TlsKey, TlsCa = cluster.TlsCa, Insecure = cluster.Insecure,
    };
}

/// <summary>Builds gym silos: the grains, the environment pool, run-state storage and the MessagePack codec.</summary>
public static class GymSilo
{
    /// <summary>Adds everything a gym silo needs to <paramref name="silo"/>.</summary>
    public static void Configure(ISiloBuilder silo, GymSiloOptions options)
    {
        if (options.Membership == "localhost")
            silo.UseLocalhostClustering(options.SiloPort, options.GatewayPort, serviceId: options.ClusterId, clusterId: options.ClusterId);
        else if (options.Membership == "postgres")
        {
            silo.Configure<ClusterOptions>(o => { o.ClusterId = options.ClusterId; o.ServiceId = options.ClusterId; });
            var address = AdvertisedAddress(options.Address);
            if (options.Check() is { } bad) throw new ArgumentException($"cluster.{bad.Key}: {bad.Problem}");
            if (!IPAddress.IsLoopback(address) && options.TlsCertificate.Length == 0 && !options.Insecure)
                throw new ArgumentException($"cluster address {address}: a silo reachable from other machines needs TLS (cluster.tls_certificate, tls_key, tls_ca; " +
                    $"gym silo --tls-certificate ...), or an explicit cluster.insecure: true / gym silo --insecure to listen on ports {options.SiloPort} and {options.GatewayPort} without it");
            silo.ConfigureEndpoints(address, options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: !IPAddress.IsLoopback(address));
            if (options.TlsCertificate.Length > 0) ClusterTls.Use(silo, options);
            silo.Services.AddSingleton<IMembershipTable>(_ => new PostgresMembershipTable(options.Postgres, options.ClusterId));
        }
        else throw new ArgumentException($"membership: expected localhost or postgres, got '{options.Membership}'");
        AddGrainServices(silo, options);
    }

    /// <summary>Everything but clustering: the codec, the environment pool, run-state storage (for test clusters that bring their own membership).</summary>
    public static void AddGrainServices(ISiloBuilder silo, GymSiloOptions options)
    {
        AddCommon(silo.Services);
        silo.Services.AddSingleton(new EnvironmentPoolOptions { PluginFolders = options.PluginFolders });
        silo.Services.AddSingleton(sp =>
        {
            var log = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Nemotron.Gym.PluginWorker");
            return new PluginWorker.PluginWorkers(options.PluginHosting with { Log = line => { options.PluginHosting.Log(line); log.LogWarning("{Line}", line); } });
        });
        silo.Services.AddSingleton<EnvironmentPool>();
        // One judge pool per silo: every environment here shares its concurrency limit, circuit breaker and cache.
        if (options.Judge is { Enabled: true } judge) silo.Services.AddSingleton(new Judges.JudgePool(judge));
        if (options.Sandbox is { } sandbox)
        {
            // Started (and health-probed) with the silo, stopped with it; the environment pool awaits it.
            silo.Services.AddSingleton(sandbox);
            silo.Services.AddSingleton<SiloSandbox>();
            silo.Services.AddHostedService(sp => sp.GetRequiredService<SiloSandbox>());
        }
        string storage = options.Membership == "postgres" && options.StateStorage.StartsWith("sqlite:", StringComparison.Ordinal) && options.Postgres.Length > 0
            ? "postgres:" + options.Postgres : options.StateStorage;
        silo.Services.AddGrainStorage(RunGrain.StorageName, (_, _) => new SqlGrainStorage(storage));
    }

    /// <summary>Resolves <see cref="ClusterSettings.Address"/>; a name that resolves to nothing is an error naming it.</summary>
    public static IPAddress AdvertisedAddress(string address)
    {
        if (string.IsNullOrWhiteSpace(address) || address == "auto")
        {
            var found = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
                .Where(n => n.OperationalStatus == System.Net.NetworkInformation.OperationalStatus.Up
                    && n.NetworkInterfaceType != System.Net.NetworkInformation.NetworkInterfaceType.Loopback)
                .SelectMany(n => n.GetIPProperties().UnicastAddresses.Select(u => u.Address))
                .FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
            return found ?? IPAddress.Loopback;
        }
        if (IPAddress.TryParse(address, out var ip)) return ip;
        try
        {
            var resolved = Dns.GetHostAddresses(address);
            return resolved.FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork) ?? resolved.FirstOrDefault()
                ?? throw new ArgumentException($"cluster address '{address}': the name resolves to no address");
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new ArgumentException($"cluster address '{address}': not an IP address, and the name does not resolve ({e.Message})", e);
        }
    }

    /// <summary>What clients and silos share: the MessagePack codec for our message types.</summary>
    public static void AddCommon(IServiceCollection services) => services.AddSerializer(b => MessagePackGrainCodec.AddTo(b));

    /// <summary>Starts a silo in this process; its <see cref="IGrainFactory"/> is the client.</summary>
    /// <param name="options">How the silo joins its cluster.</param>
    /// <param name="cancellation">Cancels the start.</param>
    /// <param name="configure">More silo configuration, applied last (tests: membership timings, call filters, placement).</param>
    public static async Task<IHost> StartAsync(GymSiloOptions options, CancellationToken cancellation = default, Action<ISiloBuilder>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        // Progress is the caller's to print; failures surface as exceptions with their cause.
        builder.UseOrleans(silo =>
        {
            Configure(silo, options);
            configure?.Invoke(silo);
        });
        var host = builder.Build();
        try { await host.StartAsync(cancellation); }
        catch
        {
            // A part that failed to start (a required sandbox) must not leave the rest holding its ports.
            try { await host.StopAsync(CancellationToken.None); }
            catch (Exception) { /* the start's error is the one to report */ }
            host.Dispose();
            throw;
        }
        return host;
    }
}
