using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Membership;

namespace ClusterSync.Cli.Demo;

/// <summary>What a surviving member held when it saw the Active die.</summary>
/// <param name="Peer">The member seen dead (the Active this member followed).</param>
/// <param name="DetectedUnixMs">When (this machine's clock, Unix ms) this member saw it dead.</param>
/// <param name="BeforePromotion">True when captured before this member promoted itself (the normal case).</param>
/// <param name="Replica">This member's live connections (key → entry with version) at that moment.</param>
internal sealed record DeathCapture(byte Peer, double DetectedUnixMs, bool BeforePromotion, IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> Replica);

/// <summary>
/// Records, on a surviving member, what it held at the instant it saw the Active member die, and when this member
/// itself started serving as Active. This is the "synchronized at failover" evidence of <c>clustersync demo</c> and
/// <c>bench failover</c>: after the kill nothing new can reach a survivor from the dead Active, so a survivor's replica
/// at detection is exactly what the Active had synchronized to it.
/// </summary>
/// <remarks>
/// Subscribed to <see cref="SyncEngine.Ticked"/> before the <see cref="MembershipController"/>, so on the tick that
/// sees the Active dead the capture runs before the controller's promotion and commit. Should the dead interval
/// expire between the two reads of the same tick, the capture comes one tick later with
/// <see cref="DeathCapture.BeforePromotion"/> false (still exact while the new Active submits nothing of its own).
/// </remarks>
internal sealed class FailoverWitness
{
    private readonly SyncEngine _engine;
    private readonly TimeProvider _time;
    private readonly MemberView[] _views;
    private MembershipController? _membership;
    private byte _activePeer;
    private DeathCapture? _capture;
    private double _servingUnixMs;

    public FailoverWitness(SyncEngine engine, TimeProvider time)
    {
        _engine = engine;
        _time = time;
        _views = new MemberView[engine.Options.PeerMemberIds.Count];
        engine.Ticked += OnTick;
    }

    /// <summary>The last capture, or null while this member has not seen an Active peer die.</summary>
    public DeathCapture? Capture => Volatile.Read(ref _capture);

    /// <summary>When this member last became Active (Unix ms, after its commit), or 0.</summary>
    public double ServingUnixMs => Volatile.Read(ref _servingUnixMs);

    public void Attach(MembershipController membership)
    {
        _membership = membership;
        membership.StateChanged += (_, to) =>
        {
            if (to == MemberState.Active)
            {
                Volatile.Write(ref _servingUnixMs, UnixMs(_time));
            }
        };
    }

    public static double UnixMs(TimeProvider time) => (time.GetUtcNow() - DateTimeOffset.UnixEpoch).TotalMilliseconds;

    private void OnTick()
    {
        int n = _engine.GetPeerViews(_views);
        foreach (var p in _views.AsSpan(0, n))
        {
            if (p.Alive && p.State == MemberState.Active)
            {
                _activePeer = p.Id;
            }
            else if (!p.Alive && p.Id == _activePeer)
            {
                _activePeer = 0;
                double at = UnixMs(_time);
                bool before = _membership?.State != MemberState.Active;
                Volatile.Write(ref _capture, new DeathCapture(p.Id, at, before, _engine.SnapshotTable()));
            }
        }
    }
}
