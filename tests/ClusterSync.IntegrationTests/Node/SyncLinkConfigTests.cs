namespace ClusterSync.IntegrationTests.Node;

/// <summary><c>cluster.members[].links</c>: several sync links per member, validated as a whole with JSON paths.</summary>
public sealed class SyncLinkConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-links-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string TwoLinkMembers = """
        [
          { "id": 1, "links": [ { "id": 20, "address": "127.0.0.2:18116" }, { "id": 10, "address": "127.0.0.1:18116" } ], "fullSyncPort": 18256 },
          { "id": 2, "links": [ { "id": 10, "address": "127.0.0.1:18117" }, { "id": 20, "address": "127.0.0.2:18117" } ], "fullSyncPort": 18257 }
        ]
        """;

    private NodeModel Load(string members, int self = 1, int control = 19116)
    {
        var path = Path.Combine(_dir, $"node-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, $$"""
            {
              "cluster": { "insecure": true, "members": {{members}} },
              "node": { "memberId": {{self}}, "control": { "port": {{control}} } }
            }
            """);
        return NodeConfigLoader.Load(path);
    }

    [Fact]
    public void Load_TwoLinks_LinkIdsAndEndPointsInIdOrder()
    {
        var loaded = Load(TwoLinkMembers);

        Assert.Equal([10, 20], loaded.LinkIds);
        Assert.Equal(["127.0.0.1:18116", "127.0.0.2:18116"], loaded.LocalLinkEndPoints.Select(e => e.ToString()));
        Assert.Equal("127.0.0.1:18117", Assert.Single(loaded.PeerLinkEndPoints[0]).ToString());
        Assert.Equal("127.0.0.2:18117", Assert.Single(loaded.PeerLinkEndPoints[1]).ToString());
        Assert.Equal("127.0.0.1:18116", loaded.LocalEndPoint.ToString()); // the lowest link is the member's primary address
        Assert.Equal("127.0.0.1:18256", loaded.FullSyncEndPoint.ToString());
    }

    [Fact]
    public void Load_SingleAddress_IsOneLinkWithIdZero()
    {
        var loaded = Load("""[ { "id": 1, "address": "127.0.0.1:18116", "fullSyncPort": 18256 }, { "id": 2, "address": "127.0.0.1:18117", "fullSyncPort": 18257 } ]""");

        Assert.Equal([0], loaded.LinkIds);
        Assert.Equal("127.0.0.1:18116", Assert.Single(loaded.LocalLinkEndPoints).ToString());
    }

    public static TheoryData<string, string, int, string> BadLinks() => new()
    {
        {
            "address and links", """[ { "id": 1, "address": "127.0.0.1:18000", "links": [ { "id": 1, "address": "127.0.0.1:18116" } ] }, { "id": 2, "links": [ { "id": 1, "address": "127.0.0.1:18117" } ] } ]""",
            19116, "cluster.members[0].address: expected either 'address' (one sync link) or 'links', not both"
        },
        {
            "different link ids", """[ { "id": 1, "links": [ { "id": 1, "address": "127.0.0.1:18116" }, { "id": 2, "address": "127.0.0.2:18116" } ] }, { "id": 2, "links": [ { "id": 1, "address": "127.0.0.1:18117" } ] } ]""",
            19116, "cluster.members[1].links: expected the sync link ids of cluster.members[0] (1, 2), found (1)"
        },
        {
            "links on one member, address on the other", """[ { "id": 1, "links": [ { "id": 1, "address": "127.0.0.1:18116" }, { "id": 2, "address": "127.0.0.2:18116" } ] }, { "id": 2, "address": "127.0.0.1:18117" } ]""",
            19116, "cluster.members[1].address: expected the sync link ids of cluster.members[0] (1, 2), found (0)"
        },
        {
            "duplicate link id", """[ { "id": 1, "links": [ { "id": 1, "address": "127.0.0.1:18116" }, { "id": 1, "address": "127.0.0.2:18116" } ] }, { "id": 2, "links": [ { "id": 1, "address": "127.0.0.1:18117" } ] } ]""",
            19116, "cluster.members[0].links[1].id: duplicate sync link id 1"
        },
        {
            "link id out of range", """[ { "id": 1, "links": [ { "id": 256, "address": "127.0.0.1:18116" } ] }, { "id": 2, "links": [ { "id": 1, "address": "127.0.0.1:18117" } ] } ]""",
            19116, "cluster.members[0].links[0].id: expected a sync link id from 0 to 255, found 256"
        },
        {
            "duplicate link address", """[ { "id": 1, "links": [ { "id": 1, "address": "127.0.0.1:18116" }, { "id": 2, "address": "127.0.0.2:18116" } ] }, { "id": 2, "links": [ { "id": 1, "address": "127.0.0.1:18117" }, { "id": 2, "address": "127.0.0.1:18116" } ] } ]""",
            19116, "cluster.members[1].links[1].address: duplicate address and port 127.0.0.1:18116 (also cluster.members[0].links[0].address)"
        },
        {
            "bad link address", """[ { "id": 1, "links": [ { "id": 1, "address": "127.0.0.1:18116" }, { "id": 2, "address": "cable" } ] }, { "id": 2, "links": [ { "id": 1, "address": "127.0.0.1:18117" }, { "id": 2, "address": "127.0.0.2:18117" } ] } ]""",
            19116, "cluster.members[0].links[1].address: expected an IP address"
        },
        {
            "control port equal to a second link's port", TwoLinkMembers, 18117, "node.control.port: 18117 is also the sync port of cluster.members[1] (127.0.0.1:18117)"
        },
        {
            "full sync port equal to a second link's port", """[ { "id": 1, "links": [ { "id": 1, "address": "127.0.0.1:18116" }, { "id": 2, "address": "127.0.0.1:18118" } ], "fullSyncPort": 18118 }, { "id": 2, "links": [ { "id": 1, "address": "127.0.0.1:18117" }, { "id": 2, "address": "127.0.0.2:18117" } ] } ]""",
            19116, "cluster.members[0].fullSyncPort: 18118 is also the sync port of cluster.members[0] (127.0.0.1:18118)"
        },
    };

    [Theory]
    [MemberData(nameof(BadLinks))]
    public void Load_BadLinks_ConfigurationErrorNamesTheField(string scenario, string members, int control, string expected)
    {
        var ex = Assert.Throws<ConfigurationException>(() => Load(members, control: control));

        Assert.True(ex.Errors.Any(e => e.Contains(expected, StringComparison.Ordinal)), $"{scenario}: {string.Join(" | ", ex.Errors)}");
    }

    [Fact]
    public void Load_NineLinks_TooMany()
    {
        string Links(int port) => "[" + string.Join(", ", Enumerable.Range(1, 9).Select(l => $$"""{ "id": {{l}}, "address": "127.0.0.{{l}}:{{port}}" }""")) + "]";
        var members = $$"""[ { "id": 1, "links": {{Links(18116)}} }, { "id": 2, "links": {{Links(18117)}} } ]""";

        var ex = Assert.Throws<ConfigurationException>(() => Load(members));

        Assert.Contains(ex.Errors, e => e.Contains("cluster.members[0].links: expected 1 to 8 sync links, found 9", StringComparison.Ordinal));
    }
}
