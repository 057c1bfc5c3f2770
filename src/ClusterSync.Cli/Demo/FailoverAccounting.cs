using ClusterSync.Connections;

namespace ClusterSync.Cli.Demo;

/// <summary>Counts for one service class (or all of them).</summary>
internal sealed record ClassTally
{
    /// <summary>Alive in the Active's data plane at the kill.</summary>
    public int Alive { get; init; }

    /// <summary>Of those, held by at least one survivor when it saw the Active die.</summary>
    public int Synced { get; init; }

    /// <summary>Of the alive ones, in the new Active's committed table.</summary>
    public int Preserved { get; init; }

    /// <summary>Synchronized but missing from the new Active's committed table: a failure of the cluster.</summary>
    public int LostSynced { get; init; }

    /// <summary>Alive but not preserved (never synchronized: still in their sync delay, never-sync class, or in flight).</summary>
    public int LostUnsynced { get; init; }

    /// <summary>
    /// Of the alive ones not preserved, those a connection template the new Active committed covers (live at the kill):
    /// its data plane accepts their next packet and creates their entry (docs/templates.md). Counted within
    /// <see cref="LostUnsynced"/> and <see cref="LostSynced"/>, not apart from them.
    /// </summary>
    public int PickedUpByTemplate { get; init; }
}

/// <summary>The comparison behind <c>clustersync demo</c> and <c>bench failover</c>.</summary>
internal sealed record FailoverTally
{
    public required ClassTally Total { get; init; }

    public required IReadOnlyDictionary<string, ClassTally> ByClass { get; init; }

    /// <summary>Held by a survivor at detection but no longer alive in the Active (its destroy was not synchronized): stale, not counted above.</summary>
    public int CapturedNotAlive { get; init; }

    /// <summary>Up to 5 lost synchronized connections, for the report.</summary>
    public IReadOnlyList<string> LostSyncedSample { get; init; } = [];
}

/// <summary>
/// The definitions, exactly:
/// <list type="bullet">
/// <item><b>alive at failover</b>: connections alive in the Active's data plane at the instant it was killed (the
/// demo is that data plane, so it knows);</item>
/// <item><b>synchronized at failover</b>: alive ones that at least one surviving member held (any version) in its
/// replica at the instant it saw the Active dead, captured by the survivor itself before promoting
/// (<see cref="FailoverWitness"/>). After the kill nothing new can reach a survivor, so this is what the Active had
/// synchronized, whatever was still queued or in flight;</item>
/// <item><b>preserved</b>: alive ones in the new Active's committed table (what it installed into its data plane);</item>
/// <item><b>lost_synced</b>: synchronized but not preserved — must be 0. Taking the union over survivors is the strict
/// reading: a connection that reached only the survivor that did not take over counts as lost.</item>
/// </list>
/// Connections are matched by key; a stale version in the committed table still counts as preserved (the connection
/// keeps working; its next change brings the state up to date).
/// </summary>
internal static class FailoverAccounting
{
    public static FailoverTally Compare(
        IReadOnlyDictionary<ConnectionKey, string> aliveAtKill,
        IReadOnlyList<IReadOnlyDictionary<ConnectionKey, ConnectionEntry>> survivorCaptures,
        IReadOnlyDictionary<ConnectionKey, ConnectionEntry> committed,
        IReadOnlyCollection<Templates.ConnectionTemplate>? templates = null,
        long killUnixMs = 0)
    {
        var byShape = new Dictionary<ConnectionKey, Templates.ConnectionTemplate>();
        foreach (var tpl in templates ?? [])
        {
            if (tpl.IsLiveAt(killUnixMs))
            {
                byShape[tpl.Key] = tpl;
            }
        }

        ArgumentNullException.ThrowIfNull(aliveAtKill);
        ArgumentNullException.ThrowIfNull(survivorCaptures);
        ArgumentNullException.ThrowIfNull(committed);
        var classes = new SortedDictionary<string, int[]>(StringComparer.Ordinal);
        var total = new int[6];
        var sample = new List<string>();
        foreach (var (key, cls) in aliveAtKill)
        {
            bool synced = false;
            foreach (var c in survivorCaptures)
            {
                if (c.ContainsKey(key))
                {
                    synced = true;
                    break;
                }
            }

            bool preserved = committed.ContainsKey(key);
            if (!classes.TryGetValue(cls, out var t))
            {
                classes[cls] = t = new int[6];
            }

            foreach (var counts in new[] { t, total })
            {
                counts[0]++;
                counts[1] += synced ? 1 : 0;
                counts[2] += preserved ? 1 : 0;
                counts[3] += synced && !preserved ? 1 : 0;
                counts[4] += !synced && !preserved ? 1 : 0;
                counts[5] += !preserved && byShape.Count > 0 && Templates.TemplateKeys.Covers(key.Protocol)
                    && byShape.ContainsKey(Templates.TemplateKeys.ShapeOf(key)) ? 1 : 0;
            }

            if (synced && !preserved && sample.Count < 5)
            {
                sample.Add($"{key} ({cls})");
            }
        }

        var capturedNotAlive = new HashSet<ConnectionKey>();
        foreach (var c in survivorCaptures)
        {
            foreach (var key in c.Keys)
            {
                if (!aliveAtKill.ContainsKey(key))
                {
                    capturedNotAlive.Add(key);
                }
            }
        }

        return new FailoverTally
        {
            Total = ToTally(total),
            ByClass = classes.ToDictionary(kv => kv.Key, kv => ToTally(kv.Value), StringComparer.Ordinal),
            CapturedNotAlive = capturedNotAlive.Count,
            LostSyncedSample = sample,
        };
    }

    private static ClassTally ToTally(int[] c) => new() { Alive = c[0], Synced = c[1], Preserved = c[2], LostSynced = c[3], LostUnsynced = c[4], PickedUpByTemplate = c[5] };
}
