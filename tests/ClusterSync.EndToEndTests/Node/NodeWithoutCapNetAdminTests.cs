using System.Globalization;
using ClusterSync.EndToEndTests.Failover;
using ClusterSync.EndToEndTests.Netns;

namespace ClusterSync.EndToEndTests.Node;

/// <summary>
/// <c>clustersync node</c> with <c>dataPlane.plugin: conntrack</c> run without CAP_NET_ADMIN (root, the capability
/// removed from its bounding set by <c>setpriv</c>, so only that differs) in a namespace of its own: it must say so
/// under <c>dataPlane.plugin</c>, naming the capability, and exit 2 (bad configuration of the machine), not crash.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class NodeWithoutCapNetAdminTests
{
    [NetnsFact]
    public async Task Node_ConntrackPluginWithoutCapNetAdmin_Exit2NamingTheCapability()
    {
        Assert.True(File.Exists("/usr/bin/setpriv") || File.Exists("/bin/setpriv"), "needs setpriv (Debian package util-linux)");
        string ns = string.Create(CultureInfo.InvariantCulture, $"cse2e-{Environment.ProcessId}-nocap");
        var directory = Directory.CreateTempSubdirectory($"cse2e-{Environment.ProcessId}-nocap-");
        await Host.MustAsync("ip", "netns", "add", ns);
        try
        {
            await Host.InAsync(ns, "ip", "link", "set", "lo", "up");
            var (keyCode, keyOutput) = await Host.RunAsync("dotnet", [FirewallNodes.CliDll(), "keygen", "--out", Path.Combine(directory.FullName, "cluster.key")], timeout: TimeSpan.FromSeconds(60));
            Assert.True(keyCode == 0, $"clustersync keygen: {keyOutput}");
            var config = Path.Combine(directory.FullName, "node.json");
            File.WriteAllText(config, """
                {
                  "cluster": {
                    "keyFile": "cluster.key",
                    "mode": "high-availability",
                    "members": [
                      { "id": 1, "address": "127.0.0.1:8116", "priority": 100, "fullSyncPort": 256 },
                      { "id": 2, "address": "127.0.0.2:8116", "priority": 90, "fullSyncPort": 256 }
                    ]
                  },
                  "node": { "memberId": 1, "control": { "port": 9116 } },
                  "policy": { "classes": [ { "name": "default", "policy": "full" } ], "rules": [] },
                  "dataPlane": { "source": "plugin", "plugin": "conntrack" }
                }
                """);

            var (code, output) = await Host.RunAsync("ip",
                ["netns", "exec", ns, "setpriv", "--inh-caps=-net_admin", "--ambient-caps=-net_admin", "--bounding-set=-net_admin",
                 "dotnet", FirewallNodes.CliDll(), "node", "--config", config],
                timeout: TimeSpan.FromSeconds(90));

            Assert.True(code == 2, $"exit {code}: {output}");
            Assert.Contains("dataPlane.plugin:", output, StringComparison.Ordinal);
            Assert.Contains("CAP_NET_ADMIN", output, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);   // a message, not a stack trace
        }
        finally
        {
            await Host.RunAsync("ip", ["netns", "del", ns]);
            directory.Delete(recursive: true);
        }
    }
}
