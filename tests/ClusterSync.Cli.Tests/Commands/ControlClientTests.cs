using System.Text.Json;
using Xunit.Abstractions;

namespace ClusterSync.Cli.Tests.Commands;

/// <summary>
/// The one control client of <c>status</c>, <c>admin</c> and <c>telemetry export --endpoint</c>: every command checks its
/// endpoint, token and CA options the same way (every bad option named, exit 2), reaches an HTTPS node through
/// <c>--ca-file</c>, and ends the same way when the node cannot be reached (exit 1) or refuses (exit 1, its reason).
/// </summary>
public sealed class ControlClientTests(ITestOutputHelper log) : IDisposable
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-cli-control-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("status")]
    [InlineData("admin down")]
    [InlineData("admin failover --to 2")]
    [InlineData("telemetry export --out OUT")]
    public async Task ControlCommand_SeveralBadOptions_Exit2NamingEveryOne(string command)
    {
        var args = command.Replace("OUT", Path.Combine(_dir, "x.csv"), StringComparison.Ordinal).Split(' ')
            .Concat(["--endpoint", "ftp://127.0.0.1:1", "--token-file", Path.Combine(_dir, "missing.token"), "--ca-file", Path.Combine(_dir, "missing.crt")]);

        await using var cli = await CliProcess.RunAsync(s_timeout, [.. args]);

        cli.AssertExit2(
            "clustersync: --endpoint: expected an http or https URL like http://127.0.0.1:9116, found 'ftp://127.0.0.1:1'",
            $"clustersync: --token-file: {Path.Combine(_dir, "missing.token")}: the token file does not exist",
            $"clustersync: --ca-file: no such file '{Path.Combine(_dir, "missing.crt")}'");
        Assert.Equal("", cli.Stdout);
    }

    [Theory]
    [InlineData("/admin/down", "admin", "down")]
    [InlineData("/admin/failover?to=2", "admin", "failover", "--to", "2")]
    [InlineData("/telemetry/export?format=lifecycle", "telemetry", "export", "--out", "OUT")]
    public async Task ControlCommand_NoNodeListening_Exit1SayingItCannotReachIt(string path, params string[] command)
    {
        string endpoint = $"http://127.0.0.1:{Ports.FreeTcp()}";
        var args = command.Select(a => a == "OUT" ? Path.Combine(_dir, "x.csv") : a).Concat(["--endpoint", endpoint]);

        await using var cli = await CliProcess.RunAsync(s_timeout, [.. args]);

        Assert.True(cli.ExitCode == 1, $"exit {cli.ExitCode}: {cli.Output}");
        Assert.Contains($"clustersync: cannot reach the node at {endpoint}{path}: ", cli.Stderr, StringComparison.Ordinal);
        Assert.Equal("", cli.Stdout);
        Assert.False(File.Exists(Path.Combine(_dir, "x.csv")));
    }

    [Fact]
    public async Task Status_HttpsEndpoint_TrustedWithCaFile_Exit0_WithoutIt_Exit1Untrusted()
    {
        await using var cluster = new NodeCluster(1, log);
        var (_, endpoint, certificate) = await StartHttpsNodeAsync(cluster);

        await using (var trusted = await cluster.RunAsync(s_timeout, "status", "--endpoint", endpoint, "--ca-file", certificate, "--json", "--timeout", "30"))
        {
            Assert.True(trusted.ExitCode == 0, trusted.Output);
            Assert.Equal(1, JsonDocument.Parse(trusted.Stdout).RootElement.GetProperty("memberId").GetInt32());
        }

        await using var untrusted = await cluster.RunAsync(s_timeout, "status", "--endpoint", endpoint, "--timeout", "5");
        Assert.True(untrusted.ExitCode == 1, untrusted.Output);
        Assert.Contains($"cannot reach the node at {endpoint}/status", untrusted.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AdminAndTelemetryExport_HttpsEndpoint_ReachTheNodeWithCaFile_RefusalsCarryTheNodesReason_WithoutCaFileUntrusted()
    {
        await using var cluster = new NodeCluster(1, log);
        var (node, endpoint, certificate) = await StartHttpsNodeAsync(cluster);
        string token = Path.Combine(cluster.Directory, NodeCluster.TokenFileName);

        // Through TLS to the node, which answers: a member it does not know (400: bad input, exit 2) ...
        await using (var unknown = await cluster.RunAsync(s_timeout, "admin", "failover", "--to", "7", "--endpoint", endpoint, "--ca-file", certificate, "--token-file", token))
        {
            unknown.AssertExit2("clustersync: --to: expected the id of a member of this cluster (1), found '7'");
        }

        // ... no token (401, with the hint) ...
        await using (var noToken = await cluster.RunAsync(s_timeout, "admin", "down", "--endpoint", endpoint, "--ca-file", certificate))
        {
            Assert.True(noToken.ExitCode == 1, noToken.Output);
            Assert.Contains($"clustersync: {endpoint}/admin/down: the node answered 401 Unauthorized: unauthorized: ", noToken.Stderr, StringComparison.Ordinal);
            Assert.EndsWith("(pass the node's token with --token-file)", noToken.Stderr.TrimEnd(), StringComparison.Ordinal);
        }

        // ... and no telemetry to export (409 with its reason; no file written).
        var csv = Path.Combine(_dir, "live.csv");
        await using (var export = await cluster.RunAsync(s_timeout, "telemetry", "export", "--endpoint", endpoint, "--ca-file", certificate, "--out", csv))
        {
            Assert.True(export.ExitCode == 1, export.Output);
            Assert.Contains($"clustersync: {endpoint}/telemetry/export?format=lifecycle: the node answered 409 Conflict: this node captures no telemetry", export.Stderr, StringComparison.Ordinal);
            Assert.False(File.Exists(csv));
        }

        // Without --ca-file the self-signed certificate is not trusted: the node is not reached.
        await using var untrusted = await cluster.RunAsync(s_timeout, "admin", "down", "--endpoint", endpoint, "--token-file", token, "--timeout", "5");
        Assert.True(untrusted.ExitCode == 1, untrusted.Output);
        Assert.Contains($"cannot reach the node at {endpoint}/admin/down", untrusted.Stderr, StringComparison.Ordinal);
        Assert.False(node.HasLogged("/admin/down requested"), "a request without the token or without trust reached the admin route");
    }

    /// <summary>Member 1 with an HTTPS control endpoint (a self-signed certificate), started and Active.</summary>
    private static async Task<(CliProcess Node, string Endpoint, string Certificate)> StartHttpsNodeAsync(NodeCluster cluster)
    {
        var (certificate, key, _) = TestCertificates.WriteSelfSigned(cluster.Directory);
        cluster.Write(1, NodeCluster.NoDataPlane, adjust: c => c with
        {
            Node = c.Node with { Control = c.Node.Control with { CertificateFile = certificate, CertificateKeyFile = key } },
        });
        var node = cluster.Start(1);
        string endpoint = $"https://127.0.0.1:{cluster.Control[0]}";
        await cluster.WaitUntilAsync(() => node.HasLogged($"Control endpoint on {endpoint}/") && node.HasLogged("-> Active"), "the node Active, its HTTPS control endpoint listening");
        return (node, endpoint, certificate);
    }
}
