using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ClusterSync.Node.Configuration;

/// <summary>
/// <c>node.control.address</c>: where the control endpoint listens. Loopback (the default, <c>127.0.0.1</c>) keeps the
/// endpoint's rules as they are. Any other address serves the network, so the endpoint fails closed there: it needs
/// <c>node.control.tokenFile</c> and <c>node.control.requireTokenForReads: true</c> (<c>/status</c> names the members,
/// their addresses and counters; <c>/ownership?connections=true</c> lists every connection), and
/// <c>allowUnauthenticated</c> is refused. A Prometheus server presents the token with
/// <c>authorization: { credentials_file: ... }</c>.
/// </summary>
internal static class ControlAddressValidator
{
    public const string DefaultAddress = "127.0.0.1";

    /// <summary>Checks the address and what a non-loopback address needs; returns the address (loopback when it is not valid).</summary>
    public static IPAddress Validate(ControlConfig control, ConfigurationErrors errors)
    {
        if (!TryParse(control.Address, out var address))
        {
            errors.Add("node.control.address", $"expected an IP address to listen on (127.0.0.1, the default; ::1; an address of this machine; 0.0.0.0 or :: for all), found '{control.Address}'");
            return IPAddress.Loopback;
        }

        if (control.Port == 0 || IPAddress.IsLoopback(address))
        {
            return address;
        }

        if (string.IsNullOrWhiteSpace(control.TokenFile))
        {
            errors.Add("node.control.tokenFile", $"node.control.address {control.Address} is not a loopback address: expected a token file (every request must present its token)");
        }

        if (!control.RequireTokenForReads)
        {
            errors.Add("node.control.requireTokenForReads", $"node.control.address {control.Address} is not a loopback address: expected true (reads such as /status and /ownership must present the token too)");
        }

        if (control.AllowUnauthenticated)
        {
            errors.Add("node.control.allowUnauthenticated", $"node.control.address {control.Address} is not a loopback address: expected false (no unauthenticated requests from the network)");
        }

        return address;
    }

    /// <summary>
    /// <c>node.control.certificateFile</c> and <c>certificateKeyFile</c> (HTTPS): both or neither; the certificate and its
    /// key load (PEM), the key file is owner-only. Returns the certificate with its key, or null for plain HTTP.
    /// </summary>
    public static X509Certificate2? LoadCertificate(ControlConfig control, string file, ConfigurationErrors errors)
    {
        bool hasCertificate = !string.IsNullOrWhiteSpace(control.CertificateFile), hasKey = !string.IsNullOrWhiteSpace(control.CertificateKeyFile);
        if (!hasCertificate && !hasKey)
        {
            return null;
        }

        if (!hasCertificate || !hasKey)
        {
            errors.Add(hasCertificate ? "node.control.certificateKeyFile" : "node.control.certificateFile",
                "HTTPS needs both node.control.certificateFile and node.control.certificateKeyFile (PEM files)");
            return null;
        }

        var directory = Path.GetDirectoryName(file)!;
        var certificatePath = Path.GetFullPath(control.CertificateFile!, directory);
        var keyPath = Path.GetFullPath(control.CertificateKeyFile!, directory);
        if (!File.Exists(certificatePath))
        {
            errors.Add("node.control.certificateFile", $"{certificatePath}: no such file; expected the endpoint's certificate (PEM)");
            return null;
        }

        if (!File.Exists(keyPath))
        {
            errors.Add("node.control.certificateKeyFile", $"{keyPath}: no such file; expected the certificate's private key (PEM)");
            return null;
        }

        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(keyPath) & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
        {
            errors.Add("node.control.certificateKeyFile", $"{keyPath}: the private key is accessible by group or others; it must be readable by its owner only: chmod 600 {keyPath}");
            return null;
        }

        try
        {
            using var pem = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
            if (!pem.HasPrivateKey)
            {
                errors.Add("node.control.certificateKeyFile", $"{keyPath}: expected the private key of {certificatePath}");
                return null;
            }

            // Re-imported as PKCS#12: SslStream on Linux wants a certificate whose key it can hand to OpenSSL as is.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            errors.Add("node.control.certificateFile", $"{certificatePath} with key {keyPath}: cannot load the certificate and its key (expected PEM files: a CERTIFICATE and its PRIVATE KEY): {ex.Message}");
            return null;
        }
    }

    /// <summary>An IP address literal (dotted quad or IPv6; not the shorthands <c>127.1</c> or a bare number that IPAddress.TryParse also takes).</summary>
    public static bool TryParse(string? text, out IPAddress address)
    {
        address = IPAddress.Loopback;
        if (string.IsNullOrWhiteSpace(text) || !IPAddress.TryParse(text, out var parsed))
        {
            return false;
        }

        if (parsed.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && text.Count(c => c == '.') != 3)
        {
            return false;
        }

        address = parsed;
        return true;
    }
}
