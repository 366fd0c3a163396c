using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Nemotron.Gym.Grains;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Reliability.Tests;

/// <summary>
/// The cluster's transport: silos with certificates from the cluster's CA form a cluster over mutual TLS, their ports
/// refuse a TLS client whose certificate the CA did not issue (and plain TCP), and a silo reachable from other
/// machines without TLS is refused unless it is started as insecure on purpose.
/// </summary>
public sealed class ClusterTlsTests(PostgresFixture pg) : IClassFixture<PostgresFixture>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-tls-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static X509Certificate2 Authority(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
    }

    /// <summary>A certificate for a silo, issued by <paramref name="ca"/>, written as PEM certificate and key files.</summary>
    private (string Certificate, string Key) Issue(X509Certificate2 ca, string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var issued = request.Create(ca, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(20), RandomNumberGenerator.GetBytes(8));
        string cert = Path.Combine(_dir, name + ".crt"), keyFile = Path.Combine(_dir, name + ".key");
        File.WriteAllText(cert, issued.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        return (cert, keyFile);
    }

    [Fact]
    public async Task SilosWithCertificatesFromTheClusterCaFormAClusterAndTheirPortsRefuseAnyOtherCertificate()
    {
        var ct = TestContext.Current.CancellationToken;
        using var ca = Authority("gym-cluster-ca");
        string caFile = Path.Combine(_dir, "ca.crt");
        File.WriteAllText(caFile, ca.ExportCertificatePem());
        string db = await pg.Server.CreateDatabaseAsync(ct: ct);
        GymSiloOptions Options((string Certificate, string Key) tls) => new()
        {
            Membership = "postgres", Postgres = db, ClusterId = "tls", Address = "127.0.0.1", SiloPort = Ports.Free(), GatewayPort = Ports.Free(),
            PluginFolders = [], TlsCertificate = tls.Certificate, TlsKey = tls.Key, TlsCa = caFile,
        };
        var a = Options(Issue(ca, "silo-a"));
        using var siloA = await GymSilo.StartAsync(a, ct);
        using var siloB = await GymSilo.StartAsync(Options(Issue(ca, "silo-b")), ct);
        try
        {
            // Both see each other as active: membership probes and silo-to-silo messages went over mutual TLS.
            var management = siloA.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0);
            var until = DateTime.UtcNow.AddSeconds(60);
            while ((await management.GetHosts(onlyActive: true)).Count < 2)
            {
                Assert.True(DateTime.UtcNow < until, "the two TLS silos never formed a cluster");
                await Task.Delay(250, ct);
            }

            // A TLS client with a certificate from the cluster's CA completes the handshake on both ports ...
            var (goodCert, goodKey) = Issue(ca, "client");
            using var good = X509Certificate2.CreateFromPemFile(goodCert, goodKey);
            Assert.True(await Handshake(a.SiloPort, good, ct));
            Assert.True(await Handshake(a.GatewayPort, good, ct));
            // ... one from another CA does not, nor one with no certificate.
            using var rogueCa = Authority("someone-else");
            var (rogueCert, rogueKey) = Issue(rogueCa, "rogue");
            using var rogue = X509Certificate2.CreateFromPemFile(rogueCert, rogueKey);
            Assert.False(await Handshake(a.SiloPort, rogue, ct));
            Assert.False(await Handshake(a.GatewayPort, rogue, ct));
            Assert.False(await Handshake(a.GatewayPort, null, ct));
        }
        finally
        {
            await siloB.StopAsync(CancellationToken.None);
            await siloA.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>True when a TLS handshake with <paramref name="clientCertificate"/> succeeds and the server keeps the connection.</summary>
    private static async Task<bool> Handshake(int port, X509Certificate2? clientCertificate, CancellationToken ct)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port, ct);
        await using var tls = new SslStream(tcp.GetStream(), false, (_, _, _, _) => true);
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "silo",
                ClientCertificates = clientCertificate == null ? null : new X509CertificateCollection { clientCertificate },
            }, ct);
            // TLS 1.3 reports a refused client certificate only on the first read after the handshake.
            var buffer = new byte[1];
            var read = tls.ReadAsync(buffer, ct).AsTask();
            var done = await Task.WhenAny(read, Task.Delay(1500, ct));
            return done != read || read.Result > 0;
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException)
        {
            return false;
        }
    }

    [Fact]
    public void PeersAreAdmittedByTheCaOrWithoutOneByTheSharedCertificate()
    {
        using var ca = Authority("ca");
        var (c1, k1) = Issue(ca, "one");
        var (c2, k2) = Issue(ca, "two");
        using var one = X509Certificate2.CreateFromPemFile(c1, k1);
        using var two = X509Certificate2.CreateFromPemFile(c2, k2);
        using var other = Authority("other");
        Assert.True(ClusterTls.Validator(one, ca)(two));
        Assert.False(ClusterTls.Validator(one, ca)(other));
        Assert.True(ClusterTls.Validator(one, null)(one));
        Assert.False(ClusterTls.Validator(one, null)(two));
    }

    [Fact]
    public async Task ASiloReachableFromOtherMachinesWithoutTlsIsRefusedUnlessInsecureIsAskedFor()
    {
        var options = new GymSiloOptions
        {
            Membership = "postgres", Postgres = "Host=127.0.0.1;Port=1;Database=none", Address = "192.0.2.10", PluginFolders = [],
            SiloPort = Ports.Free(), GatewayPort = Ports.Free(),
        };
        var e = await Assert.ThrowsAsync<ArgumentException>(() => GymSilo.StartAsync(options, TestContext.Current.CancellationToken));
        Assert.Contains("192.0.2.10", e.Message);
        Assert.Contains("needs TLS", e.Message);
        Assert.Contains("--insecure", e.Message);

        // The same through the CLI: one line, a non-zero exit, nothing started.
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { WorkingDirectory = _dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(RepoPaths.GymBuild, "gym.dll"), "silo", "--postgres", "Host=127.0.0.1;Port=1", "--address", "192.0.2.10" })
            psi.ArgumentList.Add(arg);
        using var p = System.Diagnostics.Process.Start(psi)!;
        string output = await p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken) + await p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await p.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.NotEqual(0, p.ExitCode);
        Assert.StartsWith("error: cluster address 192.0.2.10: a silo reachable from other machines needs TLS", output.Trim());
    }
}
