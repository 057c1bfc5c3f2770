using System.Text.Json;
using Xunit.Abstractions;

namespace ClusterSync.Cli.Tests.Commands;

/// <summary><c>clustersync status</c> against a node whose control endpoint speaks HTTPS (a self-signed certificate).</summary>
public sealed class StatusTlsTests(ITestOutputHelper log)
{
    [Fact]
    public async Task Status_HttpsEndpoint_TrustedWithCaFile_Exit0_WithoutIt_Exit1Untrusted()
    {
        await using var cluster = new NodeCluster(1, log);
        var (certificate, key, _) = TestCertificates.WriteSelfSigned(cluster.Directory);
        cluster.Write(1, NodeCluster.NoDataPlane, adjust: c => c with
        {
            Node = c.Node with { Control = c.Node.Control with { CertificateFile = certificate, CertificateKeyFile = key } },
        });
        var node = cluster.Start(1);
        string endpoint = $"https://127.0.0.1:{cluster.Control[0]}";
        await cluster.WaitUntilAsync(() => node.HasLogged($"Control endpoint on {endpoint}/"), "the node's HTTPS control endpoint listening");

        await using (var trusted = await cluster.RunAsync(TimeSpan.FromSeconds(60), "status", "--endpoint", endpoint, "--ca-file", certificate, "--json", "--timeout", "30"))
        {
            Assert.True(trusted.ExitCode == 0, trusted.Output);
            Assert.Equal(1, JsonDocument.Parse(trusted.Stdout).RootElement.GetProperty("memberId").GetInt32());
        }

        await using var untrusted = await cluster.RunAsync(TimeSpan.FromSeconds(60), "status", "--endpoint", endpoint, "--timeout", "5");
        Assert.True(untrusted.ExitCode == 1, untrusted.Output);
        Assert.Contains($"cannot reach the node at {endpoint}/status", untrusted.Stderr, StringComparison.Ordinal);
    }
}
