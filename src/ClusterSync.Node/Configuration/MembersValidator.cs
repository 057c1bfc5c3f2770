using System.Net;
using ClusterSync.Transport;

namespace ClusterSync.Node.Configuration;

/// <summary>The members and their sync links as validated: per member its link endpoints (null where a member's links were invalid).</summary>
internal sealed record MemberTopology(IReadOnlyList<IReadOnlyList<(byte Id, IPEndPoint EndPoint)>?> Links)
{
    /// <summary>Each member's first link endpoint (its sync IP), null where invalid.</summary>
    public IPEndPoint? EndPoint(int member) => Links[member]?[0].EndPoint;

    /// <summary>Every valid sync endpoint with its member index.</summary>
    public IEnumerable<(int Member, IPEndPoint EndPoint)> SyncEndPoints
        => Enumerable.Range(0, Links.Count).SelectMany(j => (Links[j] ?? []).Select(l => (Member: j, l.EndPoint)));

    public bool Complete => Links.All(l => l is not null);
}

/// <summary>
/// The <c>cluster.members</c> section: ids, sync addresses or links (the same link ids on every member, addresses
/// unique), priorities, full sync ports (no clash with a sync endpoint or another member's) and, for a plugin
/// transport, the members' <c>transportAddress</c>es. Collects every error.
/// </summary>
internal static class MembersValidator
{
    public static MemberTopology Validate(ClusterConfig cluster, ConfigurationErrors errors)
    {
        var members = cluster.Members;
        if (members.Count == 0)
        {
            errors.Add("cluster.members", "expected at least one member (this node), each {\"id\": 1, \"address\": \"10.0.0.1:8116\"}");
        }

        var ids = new Dictionary<int, int>();
        var addresses = new Dictionary<IPEndPoint, string>();
        var memberLinks = new List<(byte Id, IPEndPoint EndPoint)>?[members.Count];
        for (int i = 0; i < members.Count; i++)
        {
            var m = members[i];
            var p = $"cluster.members[{i}]";
            if (m.Id is < 1 or > 255)
            {
                errors.Add($"{p}.id", $"expected a member id from 1 to 255, found {m.Id}");
            }
            else if (!ids.TryAdd(m.Id, i))
            {
                errors.Add($"{p}.id", $"duplicate member id {m.Id} (also cluster.members[{ids[m.Id]}].id)");
            }

            memberLinks[i] = ParseLinks(m, p, addresses, errors);
            if (m.Priority is < 0 or > 255)
            {
                errors.Add($"{p}.priority", $"expected 0 to 255, found {m.Priority}");
            }

            if (m.FullSyncPort is < 1 or > 65535)
            {
                errors.Add($"{p}.fullSyncPort", $"expected a TCP port 1-65535, found {m.FullSyncPort}");
            }
        }

        // Sync links: every member has the same link ids (a link joins the same network on every member).
        int first = Array.FindIndex(memberLinks, l => l is not null);
        for (int i = first + 1; first >= 0 && i < members.Count; i++)
        {
            if (memberLinks[i] is { } links && !links.Select(l => l.Id).SequenceEqual(memberLinks[first]!.Select(l => l.Id)))
            {
                errors.Add($"cluster.members[{i}].{(members[i].Links.Count == 0 ? "address" : "links")}",
                    $"expected the sync link ids of cluster.members[{first}] ({LinkIdList(memberLinks[first]!)}), found ({LinkIdList(links)}); every member needs the same links");
            }
        }

        var topology = new MemberTopology(memberLinks);
        CheckFullSyncPorts(members, topology, errors);
        if (!string.IsNullOrWhiteSpace(cluster.Transport) && cluster.Transport != ClusterConfig.TransportUdp)
        {
            for (int i = 0; i < members.Count; i++)
            {
                if (string.IsNullOrWhiteSpace(members[i].TransportAddress))
                {
                    errors.Add($"cluster.members[{i}].transportAddress", $"required with cluster.transport '{cluster.Transport}' (the member's address on that transport)");
                }

                if (members[i].Links.Count > 1)
                {
                    errors.Add($"cluster.members[{i}].links", $"several sync links need cluster.transport '{ClusterConfig.TransportUdp}'");
                }
            }
        }

        return topology;
    }

    /// <summary>
    /// Full sync ports: TCP on the member's IP; no clash with a sync port on the same IP or another member's full sync
    /// endpoint on the same IP (the control endpoint is checked by <see cref="NodeSectionValidator"/>).
    /// </summary>
    private static void CheckFullSyncPorts(IReadOnlyList<MemberConfig> members, MemberTopology topology, ConfigurationErrors errors)
    {
        var syncEndPoints = topology.SyncEndPoints.ToList();
        var fullSyncEndPoints = new Dictionary<IPEndPoint, int>();
        for (int i = 0; i < members.Count; i++)
        {
            if (topology.EndPoint(i) is not { } ep || members[i].FullSyncPort is < 1 or > 65535)
            {
                continue;
            }

            var fs = new IPEndPoint(ep.Address, members[i].FullSyncPort);
            var p = $"cluster.members[{i}].fullSyncPort";
            if (!fullSyncEndPoints.TryAdd(fs, i))
            {
                errors.Add(p, $"{fs} is also the full sync endpoint of cluster.members[{fullSyncEndPoints[fs]}]; expected a port of its own");
            }

            foreach (var (j, other) in syncEndPoints)
            {
                if (other.Equals(fs))
                {
                    errors.Add(p, $"{members[i].FullSyncPort} is also the sync port of cluster.members[{j}] ({other}); expected a port of its own");
                }
            }
        }
    }

    /// <summary>
    /// A member's sync links, lowest id first: its single <c>address</c> (link id 0) or its <c>links</c>. Null when one
    /// is invalid (every problem is added to <paramref name="errors"/>); addresses must be unique across the cluster.
    /// </summary>
    private static List<(byte Id, IPEndPoint EndPoint)>? ParseLinks(MemberConfig m, string p, Dictionary<IPEndPoint, string> addresses, ConfigurationErrors errors)
    {
        var given = m.Links.Count == 0
            ? [(Id: 0, Address: m.Address, Path: $"{p}.address", IdPath: $"{p}.address")]
            : m.Links.Select((l, j) => (l.Id, l.Address, Path: $"{p}.links[{j}].address", IdPath: $"{p}.links[{j}].id")).ToList();
        bool valid = true;
        if (m.Links.Count > 0 && m.Address.Length > 0)
        {
            errors.Add($"{p}.address", "expected either 'address' (one sync link) or 'links', not both");
            valid = false;
        }

        if (m.Links.Count > Protocol.HeartbeatMessage.MaxLinks)
        {
            errors.Add($"{p}.links", $"expected 1 to {Protocol.HeartbeatMessage.MaxLinks} sync links, found {m.Links.Count}");
            valid = false;
        }

        var result = new List<(byte Id, IPEndPoint EndPoint)>();
        var linkIds = new HashSet<int>();
        foreach (var (id, address, path, idPath) in given)
        {
            if (id is < 0 or > 255)
            {
                errors.Add(idPath, $"expected a sync link id from 0 to 255, found {id}");
                valid = false;
            }
            else if (!linkIds.Add(id))
            {
                errors.Add(idPath, $"duplicate sync link id {id}; expected each link of a member once");
                valid = false;
            }

            if (!UdpDatagramChannel.TryParseEndPoint(address, out var ep, out var error))
            {
                errors.Add(path, error);
                valid = false;
            }
            else if (ep.Address.Equals(IPAddress.Any) || ep.Address.Equals(IPAddress.IPv6Any))
            {
                errors.Add(path, $"expected an address the other members can send to, found the wildcard '{address}'");
                valid = false;
            }
            else if (!addresses.TryAdd(ep, path))
            {
                errors.Add(path, $"duplicate address and port {ep} (also {addresses[ep]})");
                valid = false;
            }
            else
            {
                result.Add(((byte)id, ep));
            }
        }

        return valid ? [.. result.OrderBy(l => l.Id)] : null;
    }

    private static string LinkIdList(IEnumerable<(byte Id, IPEndPoint EndPoint)> links) => string.Join(", ", links.Select(l => l.Id));
}
