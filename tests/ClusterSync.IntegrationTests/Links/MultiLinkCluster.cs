namespace ClusterSync.IntegrationTests.Links;

/// <summary>
/// N members on loopback, each with one real UDP socket per sync link (link 0 on 127.0.0.1, link 1 on 127.0.0.2, ...,
/// ephemeral ports), every link's channel behind a <see cref="FaultInjectingChannel"/> so a test can make one link
/// silently drop everything a member sends on it.
/// </summary>
internal sealed class MultiLinkCluster : IDisposable
{
    public MultiLinkCluster(int members, byte[] linkIds)
    {
        var key = ClusterKey.Generate();
        var sockets = new UdpDatagramChannel[members, linkIds.Length];
        for (int i = 0; i < members; i++)
        {
            for (int l = 0; l < linkIds.Length; l++)
            {
                sockets[i, l] = new UdpDatagramChannel(new IPEndPoint(IPAddress.Parse($"127.0.0.{l + 1}"), 0), [], 1500);
            }
        }

        for (int i = 0; i < members; i++)
        {
            var peers = Enumerable.Range(0, members).Where(j => j != i).ToList();
            var links = new List<SyncLink>();
            var faults = new FaultInjectingChannel[linkIds.Length];
            for (int l = 0; l < linkIds.Length; l++)
            {
                sockets[i, l].SetPeers(peers.Select(j => sockets[j, l].LocalEndPoint).ToList());
                faults[l] = new FaultInjectingChannel(sockets[i, l], seed: 100 * i + l);
                links.Add(new SyncLink(linkIds[l], faults[l]));
            }

            Faults.Add(faults);
            var options = new SyncEngineOptions
            {
                MemberId = (byte)(i + 1),
                PeerMemberIds = peers.Select(j => (byte)(j + 1)).ToList(),
                Policy = LoopbackCluster.SyncEverything,
                TableCapacity = 1 << 16,
            };
            Members.Add(new SyncEngine(options, new MultiLinkChannel(links), key));
        }

        foreach (var m in Members)
        {
            m.Start();
        }
    }

    public List<SyncEngine> Members { get; } = [];

    /// <summary>[member][link index]: what the member sends on that link passes through it.</summary>
    public List<FaultInjectingChannel[]> Faults { get; } = [];

    /// <summary>Every link (by index) a member sends on drops everything: the link is silently dead both ways.</summary>
    public void SetLinkDead(int link, bool dead)
    {
        foreach (var f in Faults)
        {
            f[link].Partitioned = dead;
        }
    }

    /// <summary>True when every member sees link <paramref name="link"/> toward every peer as <paramref name="up"/>.</summary>
    public bool AllSee(int link, bool up)
        => Members.All(m => Enumerable.Range(0, m.Options.PeerMemberIds.Count).All(p => m.GetLinkStatus(p)[link].Up == up));

    /// <summary>True when every member sends every peer's traffic on link <paramref name="link"/>.</summary>
    public bool AllCarryOn(int link)
        => Members.All(m => Enumerable.Range(0, m.Options.PeerMemberIds.Count).All(p => m.GetLinkStatus(p)[link].Carrying));

    public string Describe()
        => string.Join(" | ", Members.Select(m => $"m{m.MemberId}: " + string.Join(", ", Enumerable.Range(0, m.Options.PeerMemberIds.Count).Select(p =>
            $"p{m.Options.PeerMemberIds[p]}[" + string.Join(" ", m.GetLinkStatus(p).Select(s => $"{s.LinkId}:{(s.Up ? "up" : "down")}{(s.Carrying ? "*" : "")}")) + "]"))));

    public void Dispose()
    {
        foreach (var m in Members)
        {
            m.Dispose();
        }
    }
}
