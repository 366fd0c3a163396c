using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Orleans.Connections.Security;
using Orleans.Hosting;

namespace Nemotron.Gym.Grains;

/// <summary>
/// Mutual TLS for a cluster (Orleans' TLS connection layer, for silo-to-silo and gateway connections alike): each silo
/// shows its certificate and requires one from the other end, and accepts it only when the cluster's CA issued it
/// (<see cref="ClusterSettings.TlsCa"/>) or, without a CA, when it is the silo's own certificate (one certificate
/// shared by the cluster). Host names are not checked: silos reach each other by the addresses in the membership table,
/// and the certificate, not the name, is what admits a peer.
/// </summary>
public static class ClusterTls
{
    /// <summary>Turns TLS on for <paramref name="silo"/> with the certificates <paramref name="settings"/> names.</summary>
    public static void Use(ISiloBuilder silo, ClusterSettings settings)
    {
        var certificate = LoadCertificate(settings);
        var accept = Validator(certificate, settings.TlsCa.Length > 0 ? LoadCa(settings.TlsCa) : null);
        silo.UseTls(certificate, tls =>
        {
            tls.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
            tls.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
            tls.RemoteCertificateValidation = (remote, _, _) => accept(remote);
        });
    }

    /// <summary>The certificate with its private key: PEM (certificate and key files) or PKCS#12 (.pfx/.p12, no password).</summary>
    public static X509Certificate2 LoadCertificate(ClusterSettings settings)
    {
        string path = settings.TlsCertificate;
        try
        {
            var certificate = settings.TlsKey.Length > 0 ? X509Certificate2.CreateFromPemFile(path, settings.TlsKey)
                : path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase)
                    ? X509CertificateLoader.LoadPkcs12FromFile(path, null)
                    : throw new ArgumentException($"cluster.tls_certificate {path}: a PEM certificate needs its key in cluster.tls_key (or give a .pfx/.p12 file)");
            if (!certificate.HasPrivateKey) throw new ArgumentException($"cluster.tls_certificate {path}: no private key came with it");
            return certificate;
        }
        catch (CryptographicException e)
        {
            throw new ArgumentException($"cluster.tls_certificate {path}{(settings.TlsKey.Length > 0 ? $" / tls_key {settings.TlsKey}" : "")}: cannot be read as a certificate with its key ({e.Message})", e);
        }
    }

    private static X509Certificate2 LoadCa(string path)
    {
        try { return X509CertificateLoader.LoadCertificateFromFile(path); }
        catch (CryptographicException e) { throw new ArgumentException($"cluster.tls_ca {path}: cannot be read as a certificate ({e.Message})", e); }
    }

    /// <summary>Whether a peer's certificate admits it to the cluster.</summary>
    public static Func<X509Certificate2, bool> Validator(X509Certificate2 own, X509Certificate2? ca)
    {
        if (ca == null) return remote => remote.RawData.AsSpan().SequenceEqual(own.RawData);
        return remote =>
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(ca);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return chain.Build(remote);
        };
    }
}
