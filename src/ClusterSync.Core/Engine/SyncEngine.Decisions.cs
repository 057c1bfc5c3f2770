using ClusterSync.Connections;
using ClusterSync.Policy;
using ClusterSync.Table;

namespace ClusterSync.Engine;

/// <summary>What is at risk right now: owned, live connections not yet announced (a failover now would lose them).</summary>
/// <param name="Connections">How many.</param>
/// <param name="ExposureSeconds">The sum of their ages: seconds alive but not replicated so far.</param>
public readonly record struct ExposureSnapshot(int Connections, double ExposureSeconds);

public sealed partial class SyncEngine
{
    private ISyncDecider? _decider;
    private IConnectionOutcomeSink? _outcomes;
    private ExpiredHandler? _onExpired;

    /// <summary>
    /// The per-connection decider of the policy gate (adaptive mode); null: the class policy alone decides. Can be
    /// set while running (a swap takes effect at the next new connection).
    /// </summary>
    public ISyncDecider? Decider
    {
        get => Volatile.Read(ref _decider);
        set => Volatile.Write(ref _decider, value);
    }

    /// <summary>Receives the outcome of every owned connection when it ends (destroyed or expired); null: none.</summary>
    public IConnectionOutcomeSink? OutcomeSink
    {
        get => Volatile.Read(ref _outcomes);
        set
        {
            _onExpired ??= OnExpired;
            Volatile.Write(ref _outcomes, value);
        }
    }

    /// <summary>
    /// Owned live connections not yet announced, and their summed age. Walks the table 4,096 slots per hold of its lock
    /// (as <see cref="LiveConnectionCount"/>): for status, not per packet.
    /// </summary>
    public ExposureSnapshot GetExposure()
    {
        long nowMs = NowMs();
        byte me = MemberId;
        int n = 0;
        long ageMs = 0;
        foreach (int i in WalkSlots())
        {
            ref var e = ref _table.EntryAt(i, out _);
            if (!System.Runtime.CompilerServices.Unsafe.IsNullRef(ref e) && e.Owner == me
                && (e.Status & (ConnectionStatus.Tombstone | ConnectionStatus.Announced)) == 0)
            {
                n++;
                ageMs += Math.Max(0, nowMs - e.CreatedMs);
            }
        }

        return new ExposureSnapshot(n, ageMs / 1000.0);
    }
}
