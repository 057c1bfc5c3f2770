using ClusterSync.DataPlane;

namespace ClusterSync.Node.Tests.Configuration;

/// <summary>The node model's own sync endpoints, handed to a data-plane plugin, so it does not announce the node's own flows.</summary>
public sealed class NodeModelSyncLinkTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-synclinks-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Config(string transport = "")
    {
        var path = Path.Combine(_dir, "node.json");
        File.WriteAllText(path, $$"""
            {
              "cluster": { "insecure": true, {{transport}} "members": [
                { "id": 1, "address": "127.0.0.1:18116", "fullSyncPort": 18256 },
                { "id": 2, "address": "10.201.3.2:8116" } ] },
              "node": { "memberId": 1 }
            }
            """);
        return path;
    }

    [Fact]
    public void SyncLinkEndpoints_UdpTransport_OwnAndPeersDeltaAndFullSyncEndpoints()
    {
        using var model = NodeConfigLoader.Load(Config());
        var endpoints = model.SyncLinkEndpoints;

        Assert.Equal(
            new HashSet<SyncLinkEndpoint>
            {
                new(IPAddress.Parse("127.0.0.1"), 18116, 17),
                new(IPAddress.Parse("10.201.3.2"), 8116, 17),
                new(IPAddress.Parse("127.0.0.1"), 18256, 6),
                new(IPAddress.Parse("10.201.3.2"), 256, 6),
            },
            endpoints.ToHashSet());
        Assert.Equal(4, endpoints.Count);
    }
}
