namespace ClusterSync.IntegrationTests.Plugins;

/// <summary>
/// The shipped FTP protocol plugin (built and published next to clustersync, loaded from disk): an FTP control connection
/// and its data connections are classified together, reach the peer together and leave it together.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public class FtpProtocolPluginTests
{
    private static readonly PolicyOptions Policy = new()
    {
        DefaultClass = ServiceClassNames.Default,
        Classes =
        [
            new() { Name = ServiceClassNames.MissionCritical, Policy = "full" },
            new() { Name = ServiceClassNames.ShortLived, Policy = "delayed", DelaySeconds = 0.5 },
            new() { Name = ServiceClassNames.NonSync, Policy = "none" },
            new() { Name = ServiceClassNames.Default, Policy = "full" },
        ],
        Rules = [],
    };

    private const uint Client = 0x0A01_0001;
    private const uint Server = 0x0A02_0001;

    [Fact]
    public void FtpUnit_ControlAndDataConnections_ReplicatedTogetherAndRemovedTogether()
    {
        using var cluster = new LoopbackCluster(2, configure: o => o with { Policy = Policy });
        var owner = cluster.Members[0];
        var peer = cluster.Members[1];
        // The control connection's class is delayed: its data connections wait for it, then travel with it.
        using var plugins = new NodePlugins(new PluginsConfig
        {
            Directory = PluginFiles.ShippedPluginDirectory,
            Classifier = "ftp",
            HotReload = false,
            Settings = new Dictionary<string, JsonElement> { ["ftp"] = JsonDocument.Parse("""{ "class": "short-lived" }""").RootElement.Clone() },
        }, null, owner);
        Assert.Equal("ftp", owner.Catalog.ActivePlugin?.PluginName);

        var control = ConnectionKey.IPv4(Client, Server, 40000, 21, 6);
        ConnectionKey[] data =
        [
            ConnectionKey.IPv4(Client, Server, 40001, 50000, 6),   // passive
            ConnectionKey.IPv4(Client, Server, 40002, 50001, 6),   // passive
            ConnectionKey.IPv4(Server, Client, 20, 40003, 6),      // active
        ];
        var unrelated = ConnectionKey.IPv4(0x0A09_0001, Server, 40004, 50002, 6);
        ConnectionKey[] unit = [control, .. data];

        Submit(owner, ConnectionEventKind.New, control);
        foreach (var k in data)
        {
            Submit(owner, ConnectionEventKind.New, k);
        }

        Submit(owner, ConnectionEventKind.New, unrelated);

        // Classified together: every data connection has its control connection's class.
        foreach (var k in data)
        {
            Assert.True(owner.TryGetEntry(k, out var e));
            Assert.Equal(ServiceClassNames.ShortLived, owner.Catalog.NameOf(e.ServiceClass));
        }

        Assert.Equal(3, owner.RelatedConnectionCount);
        Assert.Equal(3, owner.Counters.RelatedTied);

        // Replicated together: the peer never holds part of the unit.
        var seen = new HashSet<int>();
        Assert.True(LoopbackCluster.WaitUntil(() => Observe(peer, unit, seen) == unit.Length, TimeSpan.FromSeconds(10)));
        Assert.True(peer.TryGetEntry(unrelated, out _));
        Assert.Contains(0, seen); // held back on the owner until the control connection's delay ended
        Assert.All(seen, n => Assert.True(n == 0 || n == unit.Length, $"the peer held {n} of the {unit.Length} connections of the unit"));

        // Removed together: destroying the control connection removes its data connections, on both members.
        seen.Clear();
        Submit(owner, ConnectionEventKind.Destroy, control);
        foreach (var k in data)
        {
            Assert.False(owner.TryGetEntry(k, out var e) && (e.Status & ConnectionStatus.Tombstone) == 0);
        }

        Assert.True(LoopbackCluster.WaitUntil(() => Observe(peer, unit, seen) == 0, TimeSpan.FromSeconds(10)));
        Assert.All(seen, n => Assert.True(n == 0 || n == unit.Length, $"the peer held {n} of the {unit.Length} connections of the unit"));
        Assert.Equal(3, owner.Counters.RelatedDestroyedWithControl);
        Assert.Equal(0, owner.RelatedConnectionCount);
        Assert.True(peer.TryGetEntry(unrelated, out _));
        Assert.Equal(0, LoopbackCluster.Differences(owner, peer));
    }

    private static void Submit(SyncEngine engine, ConnectionEventKind kind, ConnectionKey key)
        => engine.Submit(ConnectionEvent.Create(kind, key, kind == ConnectionEventKind.Destroy ? ProtocolState.TcpClose : ProtocolState.TcpEstablished, 600, 0));

    /// <summary>How many of <paramref name="unit"/> the peer holds live, in one consistent snapshot; recorded in <paramref name="seen"/>.</summary>
    private static int Observe(SyncEngine peer, ConnectionKey[] unit, HashSet<int> seen)
    {
        var live = peer.SnapshotTable().Select(kv => kv.Key).ToHashSet();
        int n = unit.Count(live.Contains);
        seen.Add(n);
        return n;
    }
}
