using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ClusterSync.TestUtilities;

/// <summary>Self-signed certificates for the control endpoint's HTTPS tests, written as PEM files an operator would have.</summary>
public static class TestCertificates
{
    /// <summary>
    /// A self-signed ECDSA P-256 server certificate for 127.0.0.1, ::1 and localhost, valid for a day: written to
    /// DIR/control.crt and DIR/control.key (0600); returns both paths and the certificate (without its key).
    /// </summary>
    public static (string CertificateFile, string KeyFile, X509Certificate2 Certificate) WriteSelfSigned(string directory)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=clustersync test", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false)); // server authentication
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var certificateFile = Path.Combine(directory, "control.crt");
        var keyFile = Path.Combine(directory, "control.key");
        File.WriteAllText(certificateFile, certificate.ExportCertificatePem() + "\n");
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem() + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        return (certificateFile, keyFile, X509CertificateLoader.LoadCertificate(certificate.RawData));
    }
}
