using ClusterSync.Connections;
using ClusterSync.Engine;

namespace ClusterSync.Membership;

/// <summary>
/// Count and XOR of a per-connection hash of (key, version): two tables with equal digests hold the same connections
/// at the same versions (up to a 64-bit collision). Order-free, so members compare tables without shipping them.
/// </summary>
public struct TableDigestAccumulator : ILiveConnectionVisitor
{
    public long Count;
    public ulong Xor;

    public static ulong EntryHash(in ConnectionKey key, ulong version)
        => key.Hash64(0xD1CE_57ED) * 0x9E37_79B9_7F4A_7C15UL ^ (version * 0xBF58_476D_1CE4_E5B9UL);

    public void Visit(in ConnectionKey key, in ConnectionEntry entry)
    {
        Count++;
        Xor ^= EntryHash(key, entry.Version);
    }

    /// <summary>The digest of the engine's live connections, walked in chunks (<see cref="SyncEngine.VisitLive{TVisitor}"/>).</summary>
    public static TableDigestAccumulator Of(SyncEngine engine)
    {
        var d = default(TableDigestAccumulator);
        engine.VisitLive(ref d);
        return d;
    }

    public static TableDigestAccumulator Of(IEnumerable<KeyValuePair<ConnectionKey, ConnectionEntry>> entries)
    {
        var d = default(TableDigestAccumulator);
        foreach (var (k, e) in entries)
        {
            d.Visit(k, e);
        }

        return d;
    }
}
