using ClusterSync.DataPlane;
using System.Net;
using Xunit.Abstractions;

namespace ClusterSync.Core.Tests.Membership;

/// <summary>
/// The load-sharing ownership commit off the control tick (Membership/README.md, "Load sharing"; issue 13): the share a
/// member takes over is committed on <see cref="MembershipController.OwnershipRunner"/>, the control tick and heartbeats go
/// on, and an owner set that changes again while it runs cancels it. Deterministic tests hold the runner's work on the
/// stepped cluster's fake clock; the timing tests run real engines on loopback UDP with their own threads.
/// </summary>
public sealed class MembershipOwnershipCommitTests(ITestOutputHelper output)
{
    /// <summary>Holds every ownership commit of a member until the test runs it.</summary>
    private sealed class HeldCommits
    {
        public List<Action> Pending { get; } = [];

        public void Run(Action work) => Pending.Add(work);

        public void RunAll()
        {
            var now = Pending.ToList();
            Pending.Clear();
            now.ForEach(w => w());
        }
    }

    private static ConnectionKey KeyOf(int i) => ConnectionKey.IPv4(0x0A30_0000u + (uint)i, 0xC0A8_0101, (ushort)(20000 + (i % 40000)), 443, 6);

    /// <summary>Connections owned by the peers of member 1 (versions 100 and up), applied to <paramref name="engine"/>'s table.</summary>
    private static List<ConnectionKey> FillPeersShare(SyncEngine engine, byte[] owners, int count)
    {
        var keys = new List<ConnectionKey>(count);
        var records = new List<ConnectionEvent>(count);
        long now = engine.NowMs(); // live for an hour from now (the sweep would expire what was updated at 0)
        for (int i = 0; keys.Count < count; i++)
        {
            var k = KeyOf(i);
            byte owner = Ownership.OwnerOf(k, owners);
            if (owner == 1)
            {
                continue;
            }

            var e = ConnectionEvent.Create(ConnectionEventKind.Update, k, ProtocolState.TcpEstablished, 3600, now);
            e.Entry.UpdatedMs = now;
            e.Entry.Owner = owner;
            e.Entry.Version = 100 + (ulong)i;
            keys.Add(k);
            records.Add(e);
        }

        Assert.Equal(count, engine.ApplySnapshot(records.ToArray()));
        return keys;
    }

    private static SteppedCluster FormedLoadSharing(out HeldCommits held)
    {
        var c = new SteppedCluster([(1, 100), (2, 100), (3, 100)], mode: ClusterMode.LoadSharing);
        c.RunUntil(() => c.Members.All(m => m.Controller.Owners.SequenceEqual(new byte[] { 1, 2, 3 })), Dead * 4, "three owners");
        held = new HeldCommits();
        c[1].Controller.OwnershipRunner = held.Run;
        return c;
    }

    [Fact]
    public void OwnersChangeAgainWhileCommitting_StaleCommitCancelledNeverReachesTheSink_TheNewShareIsCommitted()
    {
        using var c = FormedLoadSharing(out var held);
        var keys = FillPeersShare(c[1].Engine, [1, 2, 3], 300);
        int commits = c[1].Sink.Commits;
        long changes = c[1].Controller.OwnershipChanges;

        c[3].Up = false;
        c.RunUntil(() => c[1].Controller.CommittingOwners is [1, 2], Dead * 2, "member 1 commits the share of owners 1,2");
        c.Run(Tick * 10); // the commit is held: the ticks go on

        Assert.Equal(MemberState.Active, c[1].State);
        Assert.Equal([1, 2, 3], c[1].Controller.Owners); // unchanged until the commit is done
        Assert.Equal(commits, c[1].Sink.Commits);

        c[2].Up = false; // the owner set changes again before that commit ran
        c.RunUntil(() => c[1].Controller.CommittingOwners is [1], Dead * 2, "member 1 commits the share of owner 1 alone");

        Assert.Equal(1, c[1].Controller.OwnershipCommitsCancelled);
        Assert.Contains("(it had reached the data plane: False)", Assert.Single(c[1].Logger.Of(1333)), StringComparison.Ordinal);
        Assert.Equal(2, held.Pending.Count);
        held.RunAll(); // the cancelled one first: it must not commit
        Assert.Equal(commits + 1, c[1].Sink.Commits);
        c.Step();

        Assert.Equal([1], c[1].Controller.Owners);
        Assert.Null(c[1].Controller.CommittingOwners);
        Assert.Equal(changes + 1, c[1].Controller.OwnershipChanges); // [1,2,3] -> [1]: the intermediate set never took effect
        Assert.Equal(keys.Count, c[1].Controller.LastGained);
        Assert.Equal(keys.ToHashSet(), c[1].Sink.Committed.Keys.ToHashSet());
        Assert.True(c[1].Controller.LastOwnershipCommit!.ControlTicks >= 1);
    }

    [Fact]
    public void OwnersBackToTheCommittedSetAfterAStaleCommitReachedTheSink_TheCommittedShareIsRestored()
    {
        using var c = FormedLoadSharing(out var held);
        FillPeersShare(c[1].Engine, [1, 2, 3], 300);
        int commits = c[1].Sink.Commits;
        long changes = c[1].Controller.OwnershipChanges;
        var committedBefore = c[1].Sink.Committed.Keys.ToHashSet();

        c.Isolate(3);
        c.RunUntil(() => c[1].Controller.CommittingOwners is [1, 2], Dead * 2, "member 1 commits the share of owners 1,2");
        c.HealAll();
        c.RunUntil(() => Sees(c[1].Engine, 3, MemberState.Active), Dead, "member 1 hears member 3 again");
        held.RunAll(); // the commit reaches the sink before the control tick looks at it again ...
        Assert.Equal(commits + 1, c[1].Sink.Commits);
        c.Step(); // ... and that tick sees member 3 back: the owner set it committed for is stale

        Assert.Equal([1, 2, 3], c[1].Controller.Owners);
        Assert.Equal(1, c[1].Controller.OwnershipCommitsCancelled);
        Assert.Contains("(it had reached the data plane: True)", Assert.Single(c[1].Logger.Of(1333)), StringComparison.Ordinal);

        // The sink holds the stale share of owners 1,2: it is committed again for owners 1,2,3.
        Assert.Single(held.Pending);
        Assert.Equal([1, 2, 3], c[1].Controller.CommittingOwners);
        held.RunAll();
        c.Step();

        Assert.Null(c[1].Controller.CommittingOwners);
        Assert.Equal(commits + 2, c[1].Sink.Commits);
        Assert.Equal(committedBefore, c[1].Sink.Committed.Keys.ToHashSet());
        Assert.Equal(changes, c[1].Controller.OwnershipChanges); // the owners never changed
        Assert.Single(c[1].Logger.Of(1335));
    }

    /// <summary>A data plane whose commit records its thread and, when armed, blocks until the test releases it.</summary>
    private sealed class BlockingSink(InMemoryReplicaSink inner) : IReplicaSink, ClusterSync.Templates.ITemplateSink, IDisposable
    {
        public volatile bool Armed;

        public ManualResetEventSlim Entered { get; } = new();

        public ManualResetEventSlim Release { get; } = new();

        public string? CommitThread { get; private set; }

        public string Name => "blocking";

        public void Commit(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica)
        {
            CommitThread = Thread.CurrentThread.Name;
            if (Armed)
            {
                Entered.Set();
                Release.Wait(TimeSpan.FromSeconds(60));
            }

            inner.Commit(replica);
        }

        public void CommitTemplates(IReadOnlyList<ClusterSync.Templates.ConnectionTemplate> templates) => inner.CommitTemplates(templates);

        public void Dispose()
        {
            Release.Set();
            Entered.Dispose();
            Release.Dispose();
        }
    }

    /// <summary>Real engines on loopback UDP (ephemeral ports, their own threads, the system clock).</summary>
    private sealed class RealCluster : IDisposable
    {
        public RealCluster(int members, int tableCapacity)
        {
            var key = ClusterKey.Generate();
            var sockets = Enumerable.Range(0, members).Select(_ => new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500)).ToList();
            for (int i = 0; i < members; i++)
            {
                var peers = Enumerable.Range(0, members).Where(j => j != i).ToList();
                sockets[i].SetPeers(peers.Select(j => sockets[j].LocalEndPoint).ToList());
                Engines.Add(new SyncEngine(new SyncEngineOptions
                {
                    MemberId = (byte)(i + 1),
                    PeerMemberIds = peers.Select(j => (byte)(j + 1)).ToList(),
                    TableCapacity = i == 0 ? tableCapacity : 1024,
                    // A dead interval of 1 s: half of it (500 ms) is what counts as this process stalling, far above
                    // what a loaded machine delays a tick by, far below what a commit on the tick would.
                    HeartbeatInterval = TimeSpan.FromMilliseconds(200),
                    DeadAfterMissedHeartbeats = 5,
                    Policy = EngineKit.TestPolicy(),
                }, sockets[i], key));
            }
        }

        public List<SyncEngine> Engines { get; } = [];

        public void Dispose()
        {
            foreach (var e in Engines)
            {
                e.Dispose();
            }
        }
    }

    private static bool Sees(SyncEngine observer, byte member, MemberState state)
    {
        var views = new MemberView[8];
        int n = observer.GetPeerViews(views);
        return views.AsSpan(0, n).ToArray().Any(v => v.Id == member && v.Alive && v.State == state);
    }

    /// <summary>The control ticks of an engine, as Unix ms on the system clock.</summary>
    private sealed class TickLog
    {
        private readonly List<double> _at = [];

        public TickLog(SyncEngine engine) => engine.Ticked += () =>
        {
            lock (_at)
            {
                _at.Add((DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).TotalMilliseconds);
            }
        };

        public int Count
        {
            get
            {
                lock (_at)
                {
                    return _at.Count;
                }
            }
        }

        /// <summary>The longest gap between two ticks from <paramref name="fromUnixMs"/> to <paramref name="toUnixMs"/> (the ticks around them included, when there are).</summary>
        public double LongestGap(double fromUnixMs, double toUnixMs)
        {
            lock (_at)
            {
                int first = Math.Max(0, _at.FindLastIndex(t => t <= fromUnixMs));
                int last = _at.FindIndex(t => t >= toUnixMs);
                last = last < 0 ? _at.Count - 1 : last; // up to the latest tick
                double longest = 0;
                for (int i = first + 1; i <= last; i++)
                {
                    longest = Math.Max(longest, _at[i] - _at[i - 1]);
                }

                return longest;
            }
        }

        public int Between(double fromUnixMs, double toUnixMs)
        {
            lock (_at)
            {
                return _at.Count(t => t > fromUnixMs && t < toUnixMs);
            }
        }
    }

    [Fact]
    public void LargeShareOf200kConnections_RealThreads_CommittedOffTheControlTickWhichKeepsItsPace()
    {
        const int Share = 200_000;
        using var cluster = new RealCluster(2, 524_288);
        var (self, peer) = (cluster.Engines[0], cluster.Engines[1]);
        peer.AdvertisedState = (byte)MemberState.Active;
        var sink = new InMemoryReplicaSink();
        using var recording = new BlockingSink(sink);
        using var controller = new MembershipController(self, new MembershipOptions { Mode = ClusterMode.LoadSharing }, recording);
        FillPeersShare(self, [1, 2], Share);
        var ticks = new TickLog(self);
        self.Start();
        peer.Start();
        Assert.True(SpinWait.SpinUntil(() => controller.Owners.SequenceEqual(new byte[] { 1, 2 }), TimeSpan.FromSeconds(30)), $"owners 1,2 (owners {string.Join(',', controller.Owners)})");

        peer.Dispose(); // a clean stop: member 1 sees it Down at once and takes its whole share over
        Assert.True(SpinWait.SpinUntil(() => controller.Owners.SequenceEqual(new byte[] { 1 }), TimeSpan.FromSeconds(60)), "member 1 owns everything");

        var report = controller.LastOwnershipCommit!;
        Assert.True(SpinWait.SpinUntil(() => ticks.Between(report.FinishedUnixMs, double.MaxValue) >= 2, TimeSpan.FromSeconds(10)), "ticks after the commit");
        double gap = ticks.LongestGap(report.StartedUnixMs, report.FinishedUnixMs);
        double halfDead = self.Options.DeadInterval.TotalMilliseconds / 2;
        output.WriteLine($"{Share} connections: walk {report.WalkMs:F1} ms, sink {report.CommitMs:F3} ms, {report.FinishedUnixMs - report.StartedUnixMs:F1} ms from the tick that started it to the end;" +
            $" {report.ControlTicks} control ticks looked at it meanwhile, {ticks.Between(report.StartedUnixMs, report.FinishedUnixMs)} ticks ran; longest gap between ticks {gap:F1} ms (ack interval {self.Options.AckInterval.TotalMilliseconds} ms);" +
            $" load {File.ReadAllText("/proc/loadavg").Trim()}");

        Assert.Equal(Share, report.Gained);
        Assert.Equal(Share, report.Holding);
        Assert.Equal(Share, sink.CommittedSnapshot.Count);
        Assert.Equal($"cs-own-{self.MemberId}", recording.CommitThread); // not the control tick's thread
        Assert.True(report.ControlTicks >= 1, "no control tick ran while the share was walked and committed");
        // The control tick kept its pace within a dead interval (a loaded machine delays a thread by a few hundred ms at
        // worst; on the tick, the walk would add itself to that).
        Assert.True(gap < 2 * halfDead, $"a {gap:F1} ms gap between control ticks while the share was committed (dead interval: {2 * halfDead} ms)");
    }

    [Fact]
    public void SinkCommitTakesLong_RealThreads_TicksAndHeartbeatsGoOnPeersSeeItActive_OwnersMoveOnlyOnceCommitted()
    {
        using var cluster = new RealCluster(3, 65_536);
        var (self, dying, observer) = (cluster.Engines[0], cluster.Engines[1], cluster.Engines[2]);
        dying.AdvertisedState = observer.AdvertisedState = (byte)MemberState.Active;
        var sink = new InMemoryReplicaSink();
        using var slow = new BlockingSink(sink);
        using var controller = new MembershipController(self, new MembershipOptions { Mode = ClusterMode.LoadSharing }, slow);
        var keys = FillPeersShare(self, [1, 2, 3], 10_000);
        int gained = keys.Count(k => Ownership.OwnerOf(k, [1, 3]) == 1); // member 2's connections that move to member 1 (none was member 1's)
        var ticks = new TickLog(self);
        foreach (var e in cluster.Engines)
        {
            e.Start();
        }

        Assert.True(SpinWait.SpinUntil(() => controller.Owners.SequenceEqual(new byte[] { 1, 2, 3 }), TimeSpan.FromSeconds(30)), $"owners 1,2,3 (owners {string.Join(',', controller.Owners)})");
        slow.Armed = true;

        dying.Dispose();
        Assert.True(slow.Entered.Wait(TimeSpan.FromSeconds(30)), "the commit reached the sink");
        long heartbeats = self.Counters.HeartbeatsSent;
        int ticked = ticks.Count;
        double blockedAt = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).TotalMilliseconds;
        // The commit blocks in the sink for as long as the test wants: ten heartbeat intervals (two dead intervals) go by.
        Assert.True(SpinWait.SpinUntil(() => self.Counters.HeartbeatsSent >= heartbeats + 10, TimeSpan.FromSeconds(30)), "heartbeats go on while the commit blocks");

        double blockedFor = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).TotalMilliseconds - blockedAt;
        double gap = ticks.LongestGap(blockedAt, blockedAt + blockedFor);
        output.WriteLine($"commit blocked {blockedFor:F0} ms: {ticks.Count - ticked} control ticks, longest gap {gap:F1} ms; {self.Counters.HeartbeatsSent - heartbeats} heartbeats; load {File.ReadAllText("/proc/loadavg").Trim()}");
        Assert.True(ticks.Count >= ticked + 40, $"{ticks.Count - ticked} control ticks while the commit blocked");
        Assert.True(gap < blockedFor / 2, $"a {gap:F1} ms gap between control ticks while the commit blocked for {blockedFor:F0} ms");
        Assert.Equal(MemberState.Active, controller.State);
        Assert.Equal([1, 2, 3], controller.Owners); // the source routes by the committed share only
        Assert.Equal([1, 3], controller.CommittingOwners);
        Assert.True(Sees(observer, 1, MemberState.Active), "the observer hears member 1 alive and Active");

        slow.Release.Set();
        Assert.True(SpinWait.SpinUntil(() => controller.Owners.SequenceEqual(new byte[] { 1, 3 }), TimeSpan.FromSeconds(30)), "owners 1,3 once committed");
        Assert.Equal(gained, controller.LastGained);
        Assert.Equal(keys.Where(k => Ownership.OwnerOf(k, [1, 3]) == 1).ToHashSet(), sink.Committed.Keys.ToHashSet());
        Assert.Equal($"cs-own-{self.MemberId}", slow.CommitThread);
    }
}
