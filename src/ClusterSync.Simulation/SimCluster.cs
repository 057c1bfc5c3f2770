using System.Security.Cryptography;
using System.Text;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.FullSync;
using ClusterSync.Membership;
using ClusterSync.Policy;
using ClusterSync.Security;

namespace ClusterSync.Simulation;

/// <summary>
/// One run of the fault simulator: N members (real engine, membership and full sync, see <see cref="SimMember"/>) on a
/// <see cref="SimNetwork"/> and <see cref="MemberClock"/>s, a data plane that churns connections on the serving Active,
/// the <see cref="Scenario"/>'s faults, and the invariants (README.md) checked as the run goes and at the end.
/// </summary>
internal sealed partial class SimCluster : IDisposable
{
    public static readonly TimeSpan AckInterval = TimeSpan.FromMilliseconds(5);
    public static readonly TimeSpan ChurnInterval = TimeSpan.FromMilliseconds(10);
    public static readonly TimeSpan StableAfterHeal = TimeSpan.FromMilliseconds(1500);

    /// <summary>Real time a full sync may take before the run is reported as a simulator error (a hang guard, never an input).</summary>
    private static readonly TimeSpan TransferWatchdog = TimeSpan.FromSeconds(60);

    private readonly Scenario _scenario;
    private readonly SimMember?[] _members;
    private readonly int[] _incarnations;
    private readonly MemberClock[] _clocks;
    private readonly bool[] _wrongKey;
    private readonly ClusterKey _key;
    private readonly List<Violation> _violations = [];
    private readonly List<string>? _trace;
    private readonly HashSet<string> _reported = new(StringComparer.Ordinal);

    // The data plane: the connections the serving Active carries (the truth replicas are held to).
    private readonly List<ConnectionKey> _liveKeys = [];
    private readonly Dictionary<ConnectionKey, int> _liveIndex = [];
    private readonly ConnectionEvent[] _batch = new ConnectionEvent[64];
    private SimMember? _serving;
    private Handover? _handover;
    private long _lostServingAt;
    private readonly (List<byte> Over, double AtSeconds)?[] _promotedOver = new (List<byte>, double)?[256];
    private readonly (List<byte> Over, double AtSeconds)?[] _promotingOver = new (List<byte>, double)?[256];
    private readonly ulong[] _lastEpoch = new ulong[256];
    private long _windowFloor = -1;
    private long _windowFloorSince;
    private bool _churning = true;
    private bool _healed;
    private double _transferCutRate;
    private long _submitted;
    private int _crashes;
    private int _fullSyncs;
    private int _fullSyncsFailed;
    private int _failovers;

    /// <summary>What the serving Active held when it stopped serving, and which of it every live Standby also held.</summary>
    private sealed record Handover(byte From, double AtSeconds, string Reason, List<ConnectionKey> Protected, List<SimMember> Holders);

    public SimCluster(Scenario scenario, bool trace = false)
    {
        _scenario = scenario;
        World = new SimWorld(scenario.Seed);
        Network = new SimNetwork(World, scenario.Members, Deliver);
        _members = new SimMember?[scenario.Members + 1];
        _incarnations = new int[scenario.Members + 1];
        _clocks = new MemberClock[scenario.Members + 1];
        _wrongKey = new bool[scenario.Members + 1];
        for (int i = 1; i <= scenario.Members; i++)
        {
            _clocks[i] = new MemberClock(World);
        }

        _key = new ClusterKey(SHA256.HashData(Encoding.UTF8.GetBytes($"cluster key of seed {scenario.Seed}")));
        _trace = trace ? [] : null;
    }

    public SimWorld World { get; }

    public SimNetwork Network { get; }

    public int Size => _scenario.Members;

    public SimMember? Member(byte id) => _members[id];

    private static readonly PolicyOptions FullOnly = new()
    {
        DefaultClass = "default",
        Classes = [new ServiceClassOptions { Name = "default", Policy = "full" }],
        Rules = [],
    };

    /// <summary>Runs the scenario to its end and returns what was violated.</summary>
    public SimulationResult Run()
    {
        try
        {
            for (byte id = 1; id <= Size; id++)
            {
                byte m = id;
                World.Schedule(TimeSpan.FromMilliseconds(World.Random.Next(0, 50)), () => StartMember(m, wrongKey: false));
            }

            foreach (var f in _scenario.Faults)
            {
                var fault = f;
                World.ScheduleAt(SimWorld.StartTicks + f.At.Ticks, () => Inject(fault));
            }

            World.Schedule(ChurnInterval, ChurnStep);
            World.ScheduleAt(SimWorld.StartTicks + _scenario.HealAt.Ticks, Heal);
            World.ScheduleAt(SimWorld.StartTicks + _scenario.ChurnStopAt.Ticks, () =>
            {
                _churning = false;
                Trace("churn stops");
            });
            World.RunUntil(SimWorld.StartTicks + _scenario.CheckAt.Ticks);
            CheckFinal();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Report(Invariants.SimulatorError, $"{ex.GetType().Name}: {ex.Message}");
        }

        var ordered = _violations.OrderBy(v => v.AtSeconds).ToList();
        return new SimulationResult(_scenario.Seed, ordered, Stats(), _scenario.Faults.Select(f => f.ToString()).ToList(), _trace);
    }

    private SimulationStats Stats()
    {
        var h = new HashCode();
        h.Add(World.EventsRun);
        h.Add(Network.Sent);
        h.Add(Network.Dropped);
        h.Add(_submitted);
        for (byte id = 1; id <= Size; id++)
        {
            if (_members[id] is { Up: true } m)
            {
                h.Add(m.Engine.LastDataSequence);
                h.Add((int)m.State);
                var d = TableDigestAccumulator.Of(m.Engine);
                h.Add(d.Count);
                h.Add(d.Xor);
            }
        }

        return new SimulationStats(World.Seconds, World.EventsRun, Network.Sent, Network.Dropped, _submitted, _crashes, _fullSyncs, _fullSyncsFailed,
            _failovers, h.ToHashCode().ToString("x8", System.Globalization.CultureInfo.InvariantCulture));
    }

    public void Dispose()
    {
        for (byte id = 1; id <= Size; id++)
        {
            _members[id]?.Dispose();
        }
    }

    // ------------------------------------------------------------------ members

    private void StartMember(byte id, bool wrongKey)
    {
        if (_members[id] is { Up: true })
        {
            return;
        }

        var peers = Enumerable.Range(1, Size).Where(i => i != id).Select(i => (byte)i).ToList();
        var options = new SyncEngineOptions
        {
            MemberId = id,
            PeerMemberIds = peers,
            Mtu = 1200,
            ResendBufferDatagrams = _scenario.ResendBufferDatagrams,
            SendWindowDatagrams = _scenario.SendWindowDatagrams,
            AckEveryDatagrams = Math.Min(8, _scenario.SendWindowDatagrams / 2),
            AckInterval = AckInterval,
            NackInterval = TimeSpan.FromMilliseconds(20),
            HeartbeatInterval = TimeSpan.FromMilliseconds(100),
            DeadAfterMissedHeartbeats = 3,
            TableCapacity = 1024,
            TombstoneTtl = _scenario.TombstoneTtl,
            PreviousEpoch = _lastEpoch[id], // the member's disk survives a crash: the node keeps its last epoch
            AntiEntropyInterval = _scenario.AntiEntropyInterval,
            AntiEntropySettle = _scenario.AntiEntropySettle,
            Policy = FullOnly,
        };
        var key = wrongKey ? new ClusterKey(SHA256.HashData(Encoding.UTF8.GetBytes($"wrong key {World.Random.Next()}"))) : _key;
        _wrongKey[id] = wrongKey;
        var membership = new MembershipOptions
        {
            Priority = _scenario.Priorities[id],
            Preemption = false,
            StartsSynchronized = false,
        };
        var member = new SimMember(this, id, _incarnations[id]++, options, membership, key, _clocks[id]);
        _members[id] = member;
        member.Engine.AdvertisedPriority = _scenario.Priorities[id];
        member.Start();
        Trace($"m{id}.{member.Incarnation} starts (epoch {member.Engine.Epoch}{(wrongKey ? ", wrong key" : "")})");
        if (member.Engine.Epoch <= _lastEpoch[id])
        {
            Report(Invariants.EpochRegression,
                $"m{id} restart #{member.Incarnation} has epoch {member.Engine.Epoch}, not newer than its previous life's {_lastEpoch[id]}" +
                $" (its wall clock is {_clocks[id].WallOffset.TotalSeconds:+0.0;-0.0}s off): peers drop its packets as a stale epoch");
        }

        _lastEpoch[id] = Math.Max(_lastEpoch[id], member.Engine.Epoch);
        World.Schedule(TimeSpan.FromTicks(World.Random.NextInt64(1, AckInterval.Ticks)), () => TickLoop(member));
    }

    private void TickLoop(SimMember member)
    {
        if (!member.Up || !ReferenceEquals(_members[member.Id], member))
        {
            return;
        }

        member.Tick();
        World.Schedule(AckInterval, () => TickLoop(member));
    }

    private void CrashMember(byte id, string why)
    {
        if (_members[id] is not { Up: true } m)
        {
            return;
        }

        if (ReferenceEquals(m, _serving))
        {
            LoseServing($"crash ({why})");
        }

        _crashes++;
        Trace($"m{id}.{m.Incarnation} crashes ({why})");
        m.Crash();
    }

    private void Deliver(byte to, byte[] datagram)
    {
        if (_members[to] is { Up: true } m)
        {
            m.Receive(datagram);
        }
    }

    /// <summary>A full sync from <paramref name="sourceId"/> into <paramref name="joiner"/>: the real server and client over an in-memory stream.</summary>
    internal FullSyncResult Transfer(SimMember joiner, byte sourceId)
    {
        var source = _members[sourceId];
        FullSyncResult result;
        if (source is not { Up: true })
        {
            result = new FullSyncResult(FullSyncStatus.ConnectFailed, "connection refused", sourceId, 0, 0, 0, 0, 0, 0);
        }
        else if (!Network.Connected(joiner.Id, sourceId))
        {
            result = new FullSyncResult(FullSyncStatus.TimedOut, "connect timed out (partition)", sourceId, 0, 0, 0, 0, 0, 0);
        }
        else
        {
            long budget = _transferCutRate > 0 && World.Random.NextDouble() < _transferCutRate ? World.Random.Next(0, 64 * 1024) : long.MaxValue;
            var (client, server) = SimDuplexStream.CreatePair(budget);
            using var stop = new CancellationTokenSource();
            var serve = source.Server.ServeAsync(server, stop.Token);
            var pull = joiner.Client.PullAsync(client, stop.Token);
            if (!pull.Wait(TransferWatchdog))
            {
                stop.Cancel();
                throw new TimeoutException($"a full sync from m{sourceId} into m{joiner.Id} did not finish");
            }

            client.Dispose();
            if (!serve.Wait(TransferWatchdog))
            {
                stop.Cancel();
                throw new TimeoutException($"the full-sync server m{sourceId} did not finish");
            }

            result = pull.Result;
        }

        if (result.Succeeded)
        {
            _fullSyncs++;
        }
        else
        {
            _fullSyncsFailed++;
        }

        Trace($"m{joiner.Id}.{joiner.Incarnation} pulls from m{sourceId}: {result.Status} ({result.Entries} entries, cut {result.CutSequence}){(result.Succeeded ? "" : ": " + result.Error)}");
        return result;
    }

    internal void OnFirstMember(SimMember member, string reason)
    {
        Trace($"m{member.Id}.{member.Incarnation} starts synchronized (first member: {reason})");
        if (member.Incarnation == 0)
        {
            return; // the cluster's formation
        }

        int own = member.Engine.LiveConnectionCount;
        foreach (var other in UpMembers())
        {
            // A peer that is synchronized and holds connections this member lacks: the join had something to pull.
            if (other.Id != member.Id && other.State is MemberState.Active or MemberState.Standby or MemberState.Promoting && other.Engine.LiveConnectionCount > own)
            {
                bool reachable = Network.Connected(member.Id, other.Id);
                Report(Invariants.JoinSkipped,
                    $"m{member.Id} (restart #{member.Incarnation}) marked itself synchronized without a full sync while m{other.Id} was up, {other.State} with {other.Engine.LiveConnectionCount} connections" +
                    $" ({(reachable ? "reachable" : "partitioned from it")}{(_wrongKey[member.Id] ? ", joiner has a wrong key" : "")}{(_wrongKey[other.Id] ? ", peer has a wrong key" : "")}); its own table holds {own}");
                return;
            }
        }
    }

    internal void OnStateChanged(SimMember member, MemberState from, MemberState to, bool onTick)
    {
        Trace($"m{member.Id}.{member.Incarnation}: {from} -> {to}");
        if (to == MemberState.Promoting)
        {
            // The decision to take over: over which Actives it was taken is judged at this instant (see below).
            _promotingOver[member.Id] = (PromotedOver(member), World.Seconds);
        }
        else if (from == MemberState.Promoting && to != MemberState.Active)
        {
            _promotingOver[member.Id] = null; // abandoned
        }

        if (to == MemberState.Active)
        {
            _failovers++;
            if (_healed && World.Now > SimWorld.StartTicks + (_scenario.HealAt + StableAfterHeal).Ticks)
            {
                Report(Invariants.StableActive,
                    $"m{member.Id} became Active {(World.Seconds - _scenario.HealAt.TotalSeconds):F2}s after healing (preemption off); serving Active was {(_serving is null ? "none" : $"m{_serving.Id}")}");
            }

            // Over an Active it must have heard: the link between them dropped nothing for the dead interval before (a member
            // declares a peer dead after a dead interval without its heartbeats; one that could not hear it then, a
            // partition healing at this very instant, promotes legitimately and the split brain resolves by rank).
            _promotedOver[member.Id] = _promotingOver[member.Id] ?? (PromotedOver(member), World.Seconds);
            _promotingOver[member.Id] = null;
            if (_serving is null)
            {
                TakeServing(member, "promotion");
            }
        }
        else if (from == MemberState.Active && ReferenceEquals(member, _serving))
        {
            LoseServing($"stepped down to {to}");
        }
    }

    /// <summary>The Actives <paramref name="member"/> decided to take over beside although it heard them: up, and the link between them clean for the dead interval before.</summary>
    private List<byte> PromotedOver(SimMember member)
    {
        long window = World.Now - member.Engine.Options.DeadInterval.Ticks;
        return UpMembers().Where(o => o.Id != member.Id && o.State == MemberState.Active && Network.CleanSince(o.Id, member.Id, window)).Select(o => o.Id).ToList();
    }

    // ------------------------------------------------------------------ the data plane and failover accounting

    private IEnumerable<SimMember> UpMembers()
    {
        for (byte id = 1; id <= Size; id++)
        {
            if (_members[id] is { Up: true } m)
            {
                yield return m;
            }
        }
    }

    /// <summary>The serving Active stops serving: what it carried, and which of it every live Standby holds (protected).</summary>
    private void LoseServing(string reason)
    {
        var from = _serving!;
        // A Promoting member holds its replica as a Standby does (it is committing it).
        var holders = UpMembers().Where(m => m.Id != from.Id && m.State is MemberState.Standby or MemberState.Promoting).ToList();
        var standbys = holders.Select(LiveKeys).ToList();
        var protectedKeys = new List<ConnectionKey>();
        if (standbys.Count > 0)
        {
            foreach (var k in _liveKeys)
            {
                if (standbys.TrueForAll(s => s.Contains(k)))
                {
                    protectedKeys.Add(k);
                }
            }
        }

        _handover = new Handover(from.Id, World.Seconds, reason, protectedKeys, holders);
        _serving = null;
        Trace($"m{from.Id} stops serving ({reason}): {_liveKeys.Count} live, {protectedKeys.Count} on every live Standby ({standbys.Count})");

        _lostServingAt = World.Now;
        if (reason.StartsWith("stepped down", StringComparison.Ordinal) && BestReachableActive(from.Id) is { } next)
        {
            if (_promotedOver[next.Id] is { } p && p.Over.Contains(from.Id))
            {
                Report(Invariants.Preempted,
                    $"m{from.Id} stepped down for m{next.Id}, which became Active at {p.AtSeconds:F3}s while m{from.Id} was Active, up and reachable over clean links" +
                    $" (m{next.Id} restart #{next.Incarnation}, {(next.StartedAsFirstMember ? "started as first member" : $"{next.PullsCompleted} full syncs")}); preemption is off");
            }

            // A split brain resolved in favour of an Active this one hears: the traffic moves to it at once.
            TakeServing(next, "already Active (split brain resolved)");
        }
    }

    /// <summary>
    /// No member serves, no promotion came within a dead interval, but a member is Active (it was already, on the
    /// other side of a partition or a lossy link): the traffic goes to the Active that reaches most members.
    /// </summary>
    private void AdoptExistingActive()
    {
        if (_serving is not null || World.Now - _lostServingAt < TimeSpan.FromMilliseconds(400).Ticks)
        {
            return;
        }

        // A member announcing Promoting is the promotion coming: wait for it (a commit or an agreement window on a lossy
        // link can take a while), within a bound, before the traffic goes to an Active of the other side (seed 5697).
        if (World.Now - _lostServingAt < TimeSpan.FromMilliseconds(1000).Ticks && UpMembers().Any(m => m.State == MemberState.Promoting))
        {
            return;
        }

        if (BestReachableActive(0) is { } next)
        {
            TakeServing(next, "already Active");
        }
    }

    private SimMember? BestReachableActive(byte except)
    {
        SimMember? best = null;
        int bestReach = -1;
        foreach (var m in UpMembers())
        {
            if (m.Id == except || m.State != MemberState.Active)
            {
                continue;
            }

            int reach = UpMembers().Count(o => o.Id != m.Id && Network.Connected(m.Id, o.Id));
            if (reach > bestReach || (reach == bestReach && Rank(m).Outranks(Rank(best!))))
            {
                best = m;
                bestReach = reach;
            }
        }

        return best;
    }

    private MemberView Rank(SimMember m) => new(m.Id, _scenario.Priorities[m.Id], MemberState.Active, true);

    private void TakeServing(SimMember member, string how)
    {
        var table = LiveKeys(member);
        if (_handover is { } dead && !dead.Holders.Exists(x => x.Up))
        {
            Trace($"every Standby that held m{dead.From}'s connections died before the takeover: nothing was protected");
        }
        else if (_handover is { } h)
        {
            var missing = h.Protected.Where(k => !table.Contains(k)).ToList();
            if (missing.Count > 0)
            {
                Report(Invariants.FailoverLoss,
                    $"m{member.Id} took over from m{h.From} ({h.Reason} at {h.AtSeconds:F3}s; m{member.Id} {how}, restart #{member.Incarnation}," +
                    $" {(member.StartedAsFirstMember ? "started as first member" : $"{member.PullsCompleted} full syncs")}) without {missing.Count} of {h.Protected.Count}" +
                    $" connections every live Standby held (e.g. {missing[0]})");
            }

        }

        _handover = null;
        _serving = member;
        _liveKeys.Clear();
        _liveIndex.Clear();
        foreach (var k in table)
        {
            AddLive(k);
        }

        Trace($"m{member.Id}.{member.Incarnation} serves ({how}): {_liveKeys.Count} connections");
    }

    /// <summary>
    /// The serving Active's send window must never wedge: full, with the slowest live peer's acknowledged-through
    /// frozen, for two dead intervals (a stalled peer is to be dropped from the window after one, as its death would be).
    /// </summary>
    private void WatchWindow()
    {
        if (_serving is not { Up: true } m || m.Engine.SendWindowOpen)
        {
            _windowFloor = -1;
            return;
        }

        var peers = m.Engine.GetPeerStatus();
        long floor = long.MaxValue;
        byte holder = 0;
        foreach (var p in peers)
        {
            if (p.Live && p.State != (byte)MemberState.Down && (long)p.AckedThrough < floor)
            {
                floor = (long)p.AckedThrough;
                holder = p.MemberId;
            }
        }

        if (floor != _windowFloor)
        {
            _windowFloor = floor;
            _windowFloorSince = World.Now;
            return;
        }

        var stuck = TimeSpan.FromTicks(World.Now - _windowFloorSince);
        if (stuck >= 2 * m.Engine.Options.DeadInterval && holder != 0)
        {
            var h = _members[holder];
            Report(Invariants.WedgedWindow,
                $"Active m{m.Id}'s send window full for {stuck.TotalMilliseconds:F0} ms, held by live m{holder}'s acked-through {floor} of {m.Engine.LastDataSequence}" +
                $" (m{holder} restart #{h?.Incarnation}, epoch {h?.Engine.Epoch}, state {h?.State}, link {(Network.Clean(m.Id, holder) ? "clean" : Network.Connected(m.Id, holder) ? "lossy" : "cut one way")});" +
                $" {m.Engine.PendingCount} changes queued");
        }
    }

    private static HashSet<ConnectionKey> LiveKeys(SimMember m) => m.Engine.SnapshotTable().Select(e => e.Key).ToHashSet();

    private void AddLive(in ConnectionKey k)
    {
        _liveIndex[k] = _liveKeys.Count;
        _liveKeys.Add(k);
    }

    private void RemoveLiveAt(int i)
    {
        var k = _liveKeys[i];
        var last = _liveKeys[^1];
        _liveKeys[i] = last;
        _liveIndex[last] = i;
        _liveKeys.RemoveAt(_liveKeys.Count - 1);
        _liveIndex.Remove(k);
    }

    private void ChurnStep()
    {
        World.Schedule(ChurnInterval, ChurnStep);
        AdoptExistingActive();
        WatchWindow();
        if (!_churning || _serving is not { Up: true } m || m.State != MemberState.Active)
        {
            return;
        }

        var r = World.Random;
        double perStep = _scenario.ChurnPerSecond * ChurnInterval.TotalSeconds;
        int n = Math.Min(_batch.Length, (int)perStep + (r.NextDouble() < perStep % 1 ? 1 : 0));
        long nowMs = m.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        int count = 0;
        for (int i = 0; i < n; i++)
        {
            double newShare = _liveKeys.Count < _scenario.TargetLive / 2 ? 0.8 : _liveKeys.Count > _scenario.TargetLive ? 0.2 : 0.4;
            double x = r.NextDouble();
            if (x < newShare || _liveKeys.Count == 0)
            {
                var key = ConnectionKey.IPv4(0x0A00_0000u | (uint)r.Next(1, 1 << 24), 0xC0A8_0000u | (uint)r.Next(1, 1 << 16), (ushort)r.Next(1024, 65536), 443, 6);
                if (_liveIndex.ContainsKey(key))
                {
                    continue;
                }

                _batch[count++] = ConnectionEvent.Create(ConnectionEventKind.New, key, ProtocolState.TcpEstablished, 3600, nowMs);
                AddLive(key);
            }
            else if (x < newShare + ((1 - newShare) * 0.5))
            {
                var key = _liveKeys[r.Next(_liveKeys.Count)];
                var state = r.NextDouble() < 0.5 ? ProtocolState.TcpEstablished : ProtocolState.TcpFinWait;
                _batch[count++] = ConnectionEvent.Create(ConnectionEventKind.Update, key, state, 3600, 0);
            }
            else
            {
                int at = r.Next(_liveKeys.Count);
                _batch[count++] = ConnectionEvent.Create(ConnectionEventKind.Destroy, _liveKeys[at], ProtocolState.None, 0, 0);
                RemoveLiveAt(at);
            }
        }

        if (count > 0)
        {
            m.Submit(_batch.AsSpan(0, count));
            _submitted += count;
        }
    }

    // ------------------------------------------------------------------ reporting

    private void Report(string invariant, string detail)
    {
        // One report per invariant and first-named member is enough to reproduce; the rest would repeat it.
        var member = System.Text.RegularExpressions.Regex.Match(detail, @"m\d+");
        if (_reported.Add(invariant + "|" + (member.Success ? member.Value : "")))
        {
            _violations.Add(new Violation(invariant, Math.Round(World.Seconds, 3), detail));
            Trace($"VIOLATION {invariant}: {detail}");
        }
    }

    private void Trace(string line) => _trace?.Add($"{World.Seconds,8:F3} {line}");
}
