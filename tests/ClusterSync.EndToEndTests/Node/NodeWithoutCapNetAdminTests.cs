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
            await using (var keygen = await CliProcess.RunAsync(TimeSpan.FromSeconds(60), "keygen", "--out", Path.Combine(directory.FullName, "cluster.key")))
            {
                Assert.True(keygen.ExitCode == 0, keygen.Tail());
            }

            var config = NodeConfigWriter.Write(Path.Combine(directory.FullName, "node.json"), new NodeConfig
            {
                Cluster = new ClusterConfig
                {
                    KeyFile = "cluster.key",
                    Members =
                    [
                        new MemberConfig { Id = 1, Address = "127.0.0.1:8116", Priority = 100, FullSyncPort = 256 },
                        new MemberConfig { Id = 2, Address = "127.0.0.2:8116", Priority = 90, FullSyncPort = 256 },
                    ],
                },
                Node = new NodeSection { MemberId = 1, Control = new ControlConfig { Port = 9116 } },
                Policy = NodeCluster.AllFull,
                DataPlane = NodeCluster.PluginDataPlane("conntrack"),
            });

            await using var node = CliProcess.Start("node without CAP_NET_ADMIN",
                ["ip", "netns", "exec", ns, "setpriv", "--inh-caps=-net_admin", "--ambient-caps=-net_admin", "--bounding-set=-net_admin"],
                "node", "--config", config);
            await node.WaitForExitAsync(TimeSpan.FromSeconds(90));

            node.AssertExit2("dataPlane.plugin:", "CAP_NET_ADMIN");
        }
        finally
        {
            await Host.RunAsync("ip", ["netns", "del", ns]);
            directory.Delete(recursive: true);
        }
    }
}
