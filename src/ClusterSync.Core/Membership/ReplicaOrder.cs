using ClusterSync.Connections;

namespace ClusterSync.Membership;

/// <summary>
/// The order <see cref="DataPlane.IReplicaSink.Commit"/> promises: entries without a master first, then every related
/// entry after its master, stable by depth (depth 0: no master; depth d: its master is in the replica at depth d − 1;
/// an entry whose master is not in the replica has depth 1). Within a depth the input order is kept.
/// </summary>
internal static class ReplicaOrder
{
    /// <summary>Deeper chains than this (forged or cyclic masters) are placed at this depth.</summary>
    internal const int MaxDepth = 8;

    /// <summary>
    /// Reorders <paramref name="replica"/> in place. O(n) and allocation-free when no entry has a master (the common
    /// case); otherwise one dictionary of the related entries and one copy.
    /// </summary>
    public static void MastersFirst(List<KeyValuePair<ConnectionKey, ConnectionEntry>> replica)
    {
        ArgumentNullException.ThrowIfNull(replica);
        int related = 0;
        foreach (var item in replica)
        {
            if (item.Value.HasMaster)
            {
                related++;
            }
        }

        if (related == 0)
        {
            return;
        }

        // The master of each related entry (only related entries can have a depth above 1).
        var masterOf = new Dictionary<ConnectionKey, ConnectionKey>(related);
        foreach (var item in replica)
        {
            if (item.Value.HasMaster)
            {
                masterOf[item.Key] = item.Value.Master;
            }
        }

        var depth = new int[replica.Count];
        int deepest = 0;
        for (int i = 0; i < replica.Count; i++)
        {
            if (!replica[i].Value.HasMaster)
            {
                continue;
            }

            int d = 1;
            var m = replica[i].Value.Master;
            while (d < MaxDepth && masterOf.TryGetValue(m, out var next))
            {
                d++;
                m = next;
            }

            depth[i] = d;
            deepest = Math.Max(deepest, d);
        }

        var ordered = new List<KeyValuePair<ConnectionKey, ConnectionEntry>>(replica.Count);
        for (int d = 0; d <= deepest; d++)
        {
            for (int i = 0; i < replica.Count; i++)
            {
                if (depth[i] == d)
                {
                    ordered.Add(replica[i]);
                }
            }
        }

        replica.Clear();
        replica.AddRange(ordered);
    }
}
