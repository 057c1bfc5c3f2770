namespace ClusterSync.Node.Tests.Configuration;

/// <summary><c>node.control</c>: the token file is checked like the cluster key; contradictions are errors naming the field.</summary>
public sealed class ControlConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-controlconfig-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Config(string control)
    {
        var path = Path.Combine(_dir, "node.json");
        File.WriteAllText(path, $$"""
            {
              "cluster": { "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:18116" } ] },
              "node": { "memberId": 1, "control": {{control}} }
            }
            """);
        return path;
    }

    private static string Errors(string config) => string.Join("\n", Assert.Throws<ConfigurationException>(() => NodeConfigLoader.Load(config)).Errors);

    [Fact]
    public void Load_TokenFileOwnerOnly_TokenLoaded()
    {
        var token = ControlTokenFile.Write(Path.Combine(_dir, "control.token"));

        var loaded = NodeConfigLoader.Load(Config("""{ "port": 19116, "tokenFile": "control.token", "requireTokenForReads": true }"""));

        Assert.Equal(token, loaded.ControlToken);
    }

    [Fact]
    public void Load_NoTokenFile_NoToken()
    {
        Assert.Null(NodeConfigLoader.Load(Config("""{ "port": 19116 }""")).ControlToken);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void Load_TokenFileReadableByOthers_ErrorNamingFieldAndChmod()
    {
        var path = Path.Combine(_dir, "control.token");
        ControlTokenFile.Write(path);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var errors = Errors(Config("""{ "tokenFile": "control.token" }"""));

        Assert.Contains("node.control.tokenFile: ", errors, StringComparison.Ordinal);
        Assert.Contains("chmod 600", errors, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("missing.token", "does not exist")]
    [InlineData("/dev/zero", "not a regular file")]
    [InlineData("short.token", "expected one line of 16")]
    public void Load_BadTokenFile_ErrorNamingField(string file, string reason)
    {
        ControlTokenFile.Write(Path.Combine(_dir, "short.token"), "abc");

        var errors = Errors(Config($$"""{ "tokenFile": "{{file}}" }"""));

        Assert.Contains("node.control.tokenFile: ", errors, StringComparison.Ordinal);
        Assert.Contains(reason, errors, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_TokenFileAndAllowUnauthenticated_Contradiction()
    {
        ControlTokenFile.Write(Path.Combine(_dir, "control.token"));

        Assert.Contains("node.control.allowUnauthenticated: 'true' contradicts node.control.tokenFile",
            Errors(Config("""{ "tokenFile": "control.token", "allowUnauthenticated": true }""")), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_RequireTokenForReadsWithoutTokenFile_Error()
    {
        Assert.Contains("node.control.requireTokenForReads: 'true' needs node.control.tokenFile",
            Errors(Config("""{ "requireTokenForReads": true }""")), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    [InlineData("127.0.0.2")]
    public void Load_LoopbackAddressWithoutToken_Valid(string address)
    {
        var loaded = NodeConfigLoader.Load(Config($$"""{ "address": "{{address}}", "port": 19116 }"""));

        Assert.Equal(address, loaded.Config.Node.Control.Address);
    }

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("::")]
    [InlineData("192.0.2.10")]
    public void Load_NonLoopbackAddressWithoutToken_ErrorsNamingTokenFileAndRequireTokenForReads(string address)
    {
        var errors = Errors(Config($$"""{ "address": "{{address}}", "port": 19116 }"""));

        Assert.Contains($"node.control.tokenFile: node.control.address {address} is not a loopback address: expected a token file", errors, StringComparison.Ordinal);
        Assert.Contains($"node.control.requireTokenForReads: node.control.address {address} is not a loopback address: expected true", errors, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_NonLoopbackAddressWithTokenForEveryRequest_Valid()
    {
        var token = ControlTokenFile.Write(Path.Combine(_dir, "control.token"));

        var loaded = NodeConfigLoader.Load(Config("""{ "address": "0.0.0.0", "port": 19116, "tokenFile": "control.token", "requireTokenForReads": true }"""));

        Assert.Equal(token, loaded.ControlToken);
    }

    [Fact]
    public void Load_NonLoopbackAddressAllowingUnauthenticated_ErrorNamingIt()
    {
        Assert.Contains("node.control.allowUnauthenticated: node.control.address 0.0.0.0 is not a loopback address: expected false",
            Errors(Config("""{ "address": "0.0.0.0", "port": 19116, "allowUnauthenticated": true }""")), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("localhost")]
    [InlineData("127.1")]
    [InlineData("")]
    [InlineData("10.0.0.300")]
    public void Load_AddressNotAnIpLiteral_ErrorNamingField(string address)
    {
        Assert.Contains($"node.control.address: expected an IP address to listen on", Errors(Config($$"""{ "address": "{{address}}" }""")), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_CertificateAndKey_LoadedWithItsKey()
    {
        var (_, _, expected) = TestCertificates.WriteSelfSigned(_dir);

        using var loaded = NodeConfigLoader.Load(Config("""{ "port": 19116, "certificateFile": "control.crt", "certificateKeyFile": "control.key" }"""));

        Assert.Equal(expected.Thumbprint, loaded.ControlCertificate?.Thumbprint);
        Assert.True(loaded.ControlCertificate?.HasPrivateKey);
    }

    [Fact]
    public void Load_CertificateWithoutKey_ErrorNamingKeyField()
    {
        TestCertificates.WriteSelfSigned(_dir);

        Assert.Contains("node.control.certificateKeyFile: HTTPS needs both", Errors(Config("""{ "certificateFile": "control.crt" }""")), StringComparison.Ordinal);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void Load_KeyReadableByOthers_ErrorNamingKeyFieldAndChmod()
    {
        var (_, key, _) = TestCertificates.WriteSelfSigned(_dir);
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);

        var errors = Errors(Config("""{ "certificateFile": "control.crt", "certificateKeyFile": "control.key" }"""));

        Assert.Contains("node.control.certificateKeyFile: ", errors, StringComparison.Ordinal);
        Assert.Contains("chmod 600", errors, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_CertificateFileNotPem_ErrorNamingField()
    {
        TestCertificates.WriteSelfSigned(_dir);
        File.WriteAllText(Path.Combine(_dir, "control.crt"), "not a certificate\n");

        Assert.Contains("node.control.certificateFile: ", Errors(Config("""{ "certificateFile": "control.crt", "certificateKeyFile": "control.key" }""")), StringComparison.Ordinal);
    }
}
