using ClusterSync.Engine.Scheduling;
using ClusterSync.Policy;

namespace ClusterSync.Engine;

/// <summary>How one member synchronizes. Immutable; validated as a whole by <see cref="Validate"/>.</summary>
public sealed record SyncEngineOptions
{
    public const int DefaultPort = 8116;

    /// <summary>This member's id (1-255).</summary>
    public byte MemberId { get; init; }

    /// <summary>Member ids of the peers, in the order of the transport's peer indexes.</summary>
    public IReadOnlyList<byte> PeerMemberIds { get; init; } = [];

    /// <summary>Largest datagram sent (the path MTU minus IP/UDP headers is the right value).</summary>
    public int Mtu { get; init; } = 1400;

    /// <summary>Datagrams the sender keeps for retransmission.</summary>
    public int ResendBufferDatagrams { get; init; } = 16384;

    /// <summary>Unacknowledged datagrams allowed in flight toward live peers before the sender waits (coalescing absorbs the wait).</summary>
    public int SendWindowDatagrams { get; init; } = 512;

    /// <summary>A receiver acknowledges at once after this many new datagrams (ack clocking), besides every <see cref="AckInterval"/>.</summary>
    public int AckEveryDatagrams { get; init; } = 32;

    /// <summary>How often a receiver acknowledges progress and NACKs gaps.</summary>
    public TimeSpan AckInterval { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>A receiver asks again for the same missing datagrams no sooner than this (gives a resend time to arrive).</summary>
    public TimeSpan NackInterval { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>How often a member sends a heartbeat carrying its last sequence.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Heartbeats missed before a peer counts as dead.</summary>
    public int DeadAfterMissedHeartbeats { get; init; } = 3;

    /// <summary>A resend for the same datagram is not repeated within this time.</summary>
    public TimeSpan RetransmitHoldoff { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>0: a batch is flushed as soon as the queue drains. Otherwise the sender waits this long after the first change to coalesce more.</summary>
    public TimeSpan MaxBatchDelay { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// Hand the datagrams of one pass over the queue to the transport together where it can send them in few system
    /// calls (the UDP transport: sendmmsg, UDP GSO). Off: one send per datagram (tests and benchmarks compare the two).
    /// </summary>
    internal bool BatchSends { get; init; } = true;

    /// <summary>Connections the table holds before it grows (like nf_conntrack_max).</summary>
    public int TableCapacity { get; init; } = 1 << 18;

    /// <summary>How long a destroyed connection's tombstone guards against reordered older updates.</summary>
    public TimeSpan TombstoneTtl { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A live peer whose oldest unacknowledged update is older than this is lagging: health turns red
    /// (<see cref="SyncEngine.ReplicationLagFailure"/>) and an error is logged. Zero turns the alarm off. A bound
    /// shorter than the dead interval counts as the dead interval (a peer is not judged faster than its death would be).
    /// </summary>
    public TimeSpan MaxReplicationLag { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the Active checks each live Standby's table against its own (anti-entropy range digests); zero turns it off.</summary>
    public TimeSpan AntiEntropyInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Anti-entropy counts only entries last updated at least this long ago, so changes still in flight do not look like divergence.</summary>
    public TimeSpan AntiEntropySettle { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Send and accept unencrypted packets. Must be explicit; logged as a warning at start.</summary>
    public bool Insecure { get; init; }

    /// <summary>Fixed epoch for this life of the member; 0 takes the current Unix time in milliseconds (see <see cref="PreviousEpoch"/>).</summary>
    public ulong Epoch { get; init; }

    /// <summary>
    /// The epoch of this member's previous life, if the host kept it (0: unknown). Peers drop packets of an epoch older
    /// than the one they hold for a member (a replay of an earlier life), so a restart must get a newer epoch even when
    /// the wall clock stepped back since: the epoch is then <c>max(now in Unix ms, PreviousEpoch + 1)</c>.
    /// </summary>
    public ulong PreviousEpoch { get; init; }

    public PolicyOptions Policy { get; init; } = new();

    /// <summary>
    /// How the sync threads (sender, receiver, heartbeat, control tick) are scheduled: the default, a nice value, or a real-time policy
    /// (conntrackd's <c>Scheduler</c> and <c>NiceValue</c>; <see cref="SyncThreadScheduling"/>).
    /// </summary>
    public SyncThreadScheduling Scheduler { get; init; } = SyncThreadScheduling.Default;

    /// <summary>
    /// After a pass over its queue the sender polls for new work this long before it blocks (0: blocks at once). A
    /// change submitted meanwhile is picked up without a wake-up through the kernel; an idle member never spins (only
    /// after work). Benchmarks override it with <c>CLUSTERSYNC_SENDER_SPIN_US</c>.
    /// </summary>
    internal TimeSpan SenderSpin { get; init; } = SpinFromEnvironment("CLUSTERSYNC_SENDER_SPIN_US", TimeSpan.Zero);

    /// <summary>
    /// A submit sends what it queued on its own thread when the sender thread is idle (one thread hand-off less per
    /// update; the sender thread keeps NACKs, full windows and large queues). Benchmarks compare with
    /// <c>CLUSTERSYNC_INLINE_SEND=0</c> / <c>=1</c>.
    /// </summary>
    internal bool InlineSend { get; init; } = Environment.GetEnvironmentVariable("CLUSTERSYNC_INLINE_SEND") is { } v ? v == "1" : InlineSendDefault;

    private const bool InlineSendDefault = true;

    internal static TimeSpan SpinFromEnvironment(string variable, TimeSpan fallback)
        => int.TryParse(Environment.GetEnvironmentVariable(variable), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int us) && us is >= 0 and <= 10_000
            ? TimeSpan.FromMicroseconds(us)
            : fallback;

    public TimeSpan DeadInterval => HeartbeatInterval * DeadAfterMissedHeartbeats;

    /// <summary>The replication lag bound in force: <see cref="MaxReplicationLag"/>, at least the dead interval; zero when off.</summary>
    public TimeSpan EffectiveMaxReplicationLag => MaxReplicationLag == TimeSpan.Zero ? TimeSpan.Zero
        : MaxReplicationLag < DeadInterval ? DeadInterval : MaxReplicationLag;

    public IEnumerable<string> Validate(string path)
    {
        if (MemberId == 0)
        {
            yield return $"{path}.memberId: expected a member id from 1 to 255";
        }

        var seen = new HashSet<byte>();
        for (int i = 0; i < PeerMemberIds.Count; i++)
        {
            var id = PeerMemberIds[i];
            if (id == 0 || id == MemberId || !seen.Add(id))
            {
                yield return $"{path}.peers[{i}].memberId: expected a unique member id from 1 to 255 other than this member's, found {id}";
            }
        }

        if (Mtu is < 256 or > 65507)
        {
            yield return $"{path}.mtu: expected 256 to 65507 bytes, found {Mtu}";
        }

        if (ResendBufferDatagrams is < 64 or > 1 << 20)
        {
            yield return $"{path}.resendBufferDatagrams: expected 64 to 1048576, found {ResendBufferDatagrams}";
        }

        if (SendWindowDatagrams < 16 || SendWindowDatagrams > ResendBufferDatagrams)
        {
            yield return $"{path}.sendWindowDatagrams: expected 16 up to resendBufferDatagrams ({ResendBufferDatagrams}), found {SendWindowDatagrams}";
        }

        if (AckEveryDatagrams < 1 || AckEveryDatagrams > SendWindowDatagrams / 2)
        {
            yield return $"{path}.ackEveryDatagrams: expected 1 up to half the send window ({SendWindowDatagrams / 2}), found {AckEveryDatagrams}";
        }

        if (AckInterval <= TimeSpan.Zero || AckInterval > TimeSpan.FromSeconds(1))
        {
            yield return $"{path}.ackInterval: expected a duration in (0, 1s], found {AckInterval}";
        }

        if (NackInterval < AckInterval || NackInterval > TimeSpan.FromSeconds(5))
        {
            yield return $"{path}.nackInterval: expected a duration from ackInterval ({AckInterval}) to 5s, found {NackInterval}";
        }

        if (HeartbeatInterval < TimeSpan.FromMilliseconds(1) || HeartbeatInterval > TimeSpan.FromSeconds(10))
        {
            yield return $"{path}.heartbeatInterval: expected a duration in [1ms, 10s], found {HeartbeatInterval}";
        }

        if (DeadAfterMissedHeartbeats is < 2 or > 100)
        {
            yield return $"{path}.deadAfterMissedHeartbeats: expected 2 to 100, found {DeadAfterMissedHeartbeats}";
        }

        if (TableCapacity is < 16 or > 1 << 28)
        {
            yield return $"{path}.tableCapacity: expected 16 to 268435456, found {TableCapacity}";
        }

        if (MaxBatchDelay < TimeSpan.Zero || MaxBatchDelay > TimeSpan.FromSeconds(1))
        {
            yield return $"{path}.maxBatchDelay: expected a duration in [0, 1s], found {MaxBatchDelay}";
        }

        if (AntiEntropyInterval < TimeSpan.Zero || AntiEntropyInterval > TimeSpan.FromDays(1))
        {
            yield return $"{path}.antiEntropyInterval: expected 0 (off) or a duration up to 1 day, found {AntiEntropyInterval}";
        }

        if (AntiEntropySettle < TimeSpan.Zero || AntiEntropySettle > TimeSpan.FromMinutes(10))
        {
            yield return $"{path}.antiEntropySettle: expected a duration from 0 to 10 minutes, found {AntiEntropySettle}";
        }

        if (MaxReplicationLag < TimeSpan.Zero || MaxReplicationLag > TimeSpan.FromHours(1))
        {
            yield return $"{path}.maxReplicationLag: expected 0 (off) or a duration up to 1h, found {MaxReplicationLag}";
        }

        foreach (var e in Policy.Validate($"{path}.policy"))
        {
            yield return e;
        }

        bool schedulerInRange = true;
        foreach (var e in Scheduler.Validate($"{path}.scheduler"))
        {
            schedulerInRange = false;
            yield return e;
        }

        if (schedulerInRange && Scheduler.CheckAllowed($"{path}.scheduler") is { } denied)
        {
            yield return denied;
        }
    }
}
