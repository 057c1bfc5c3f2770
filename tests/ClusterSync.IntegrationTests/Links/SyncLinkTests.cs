using ClusterSync.Workload;

namespace ClusterSync.IntegrationTests.Links;

/// <summary>
/// Two sync links per member over real UDP on loopback (link id 10 on 127.0.0.1, link id 20 on 127.0.0.2). Link 10
/// silently drops everything (no carrier loss: every datagram sent on it vanishes); the members must notice within the
/// dead interval, move their traffic to link 20 and lose no update; when link 10 heals, traffic returns to it.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class SyncLinkTests(ITestOutputHelper output)
{
    private static readonly byte[] s_links = [10, 20];

    /// <summary>Submits generated changes through a member at a bounded rate on its own thread until stopped (or a cap).</summary>
    private sealed class Churn : IDisposable
    {
        private readonly Thread _thread;
        private volatile bool _stop;

        public Churn(SyncEngine member, int seed, uint addressBase, int ratePerSecond)
        {
            var generator = new ChangeGenerator(seed, 5_000, ipv6Share: 0, addressBase: addressBase);
            _thread = new Thread(() =>
            {
                var batch = new ConnectionEvent[50];
                var clock = Stopwatch.StartNew();
                while (!_stop && clock.Elapsed < TimeSpan.FromSeconds(30) && Submitted < 1_000_000)
                {
                    if (Submitted > ratePerSecond * clock.Elapsed.TotalSeconds)
                    {
                        // Ahead of the rate: wait until the clock catches up (or the test stops the churn).
                        SpinWait.SpinUntil(() => _stop || Submitted <= ratePerSecond * clock.Elapsed.TotalSeconds, TimeSpan.FromMilliseconds(100));
                        continue;
                    }

                    LoopbackCluster.SubmitNext(member, generator, batch);
                    Submitted += batch.Length;
                }
            }) { IsBackground = true };
            _thread.Start();
        }

        public long Submitted { get; private set; }

        public void Dispose()
        {
            _stop = true;
            _thread.Join(TimeSpan.FromSeconds(10));
        }
    }

    private static bool Wait(Func<bool> condition, TimeSpan timeout) => LoopbackCluster.WaitUntil(condition, timeout);

    private static void AssertConverged(MultiLinkCluster cluster)
    {
        var members = cluster.Members;
        Assert.True(Wait(() => members.Skip(1).All(m => LoopbackCluster.Differences(members[0], m) == 0), TimeSpan.FromSeconds(30)),
            "tables differ: " + string.Join(", ", members.Skip(1).Select(m => $"m1 vs m{m.MemberId}: {LoopbackCluster.Differences(members[0], m)}")));
        foreach (var m in members)
        {
            // Nothing was written off: every update sent on the dead link was repaired on the live one.
            Assert.Equal(0, m.Counters.ResyncNeeded);
            Assert.Equal(0, m.Counters.LostSequences);
        }
    }

    /// <summary>Kills link index 0 under churn; returns how long until every member saw it down everywhere.</summary>
    private TimeSpan KillFirstLinkUnderChurn(MultiLinkCluster cluster, List<Churn> churn)
    {
        Assert.True(Wait(() => cluster.AllSee(0, up: true) && cluster.AllSee(1, up: true), TimeSpan.FromSeconds(10)), cluster.Describe());
        Assert.True(cluster.AllCarryOn(0), "traffic should start on the lowest link id: " + cluster.Describe());
        Assert.True(Wait(() => churn.All(c => c.Submitted > 2_000), TimeSpan.FromSeconds(10)));

        var dead = Stopwatch.StartNew();
        cluster.SetLinkDead(0, dead: true);
        Assert.True(Wait(() => cluster.AllSee(0, up: false) && cluster.AllCarryOn(1), TimeSpan.FromSeconds(5)), cluster.Describe());
        var detected = dead.Elapsed;
        output.WriteLine($"link 10 declared down and abandoned by every member {detected.TotalMilliseconds:F0} ms after it went silent (dead interval {cluster.Members[0].Options.DeadInterval.TotalMilliseconds} ms)");
        Assert.True(cluster.AllSee(1, up: true), cluster.Describe());
        return detected;
    }

    [Fact]
    public void SilentlyDroppingLink_DetectedWithinDeadInterval_TrafficMovesToSecondLinkWithNoLostUpdate()
    {
        using var cluster = new MultiLinkCluster(3, s_links);
        var churn = new List<Churn>
        {
            new(cluster.Members[0], seed: 1, addressBase: 0x0A00_0000, ratePerSecond: 5_000),
            new(cluster.Members[1], seed: 2, addressBase: 0x0B00_0000, ratePerSecond: 2_000),
        };
        try
        {
            var detected = KillFirstLinkUnderChurn(cluster, churn);
            var dead = cluster.Members[0].Options.DeadInterval;

            // Down within the dead interval of the link's last heartbeat: at most the dead interval after it went silent,
            // plus the control tick and scheduling on a busy 2-core machine.
            Assert.True(detected <= dead + TimeSpan.FromMilliseconds(150), $"detected after {detected.TotalMilliseconds:F0} ms");

            // Churn keeps flowing on link 20 for a while.
            long before = churn.Sum(c => c.Submitted);
            Assert.True(Wait(() => churn.Sum(c => c.Submitted) > before + 5_000, TimeSpan.FromSeconds(10)));
        }
        finally
        {
            churn.ForEach(c => c.Dispose());
        }

        output.WriteLine($"submitted {churn.Sum(c => c.Submitted)} changes; dropped on link 10: {string.Join(", ", cluster.Faults.Select(f => f[0].Dropped))}");
        AssertConverged(cluster);
        Assert.True(cluster.AllCarryOn(1), cluster.Describe());
        Assert.All(cluster.Faults, f => Assert.True(f[0].Dropped > 0));
        Assert.All(cluster.Members, m => Assert.Equal(m.Options.PeerMemberIds.Count, m.Counters.LinkSwitches));
        Assert.Equal(0, cluster.Members.Sum(m => m.Counters.LinkMismatches));
        Assert.True(cluster.Members[0].Counters.Retransmissions > 0, "what was sent on the dead link must have been resent on the live one");
    }

    [Fact]
    public void DeadLinkRecovers_TrafficReturnsToLowestLink_SecondLinkThenDyingLosesNothing()
    {
        using var cluster = new MultiLinkCluster(2, s_links);
        var churn = new List<Churn> { new(cluster.Members[0], seed: 3, addressBase: 0x0A00_0000, ratePerSecond: 5_000) };
        try
        {
            KillFirstLinkUnderChurn(cluster, churn);

            // Link 10 heals: traffic returns to it (lowest id first).
            cluster.SetLinkDead(0, dead: false);
            Assert.True(Wait(() => cluster.AllSee(0, up: true) && cluster.AllCarryOn(0), TimeSpan.FromSeconds(5)), cluster.Describe());

            // Proof that traffic really is back on link 10: link 20 now dies, and nothing needs to move.
            cluster.SetLinkDead(1, dead: true);
            long before = churn[0].Submitted;
            Assert.True(Wait(() => churn[0].Submitted > before + 5_000 && cluster.AllSee(1, up: false), TimeSpan.FromSeconds(10)), cluster.Describe());
            Assert.True(cluster.AllCarryOn(0), cluster.Describe());
        }
        finally
        {
            churn.ForEach(c => c.Dispose());
        }

        AssertConverged(cluster);
        Assert.All(cluster.Members, m => Assert.Equal(2, m.Counters.LinkSwitches)); // away from link 10 and back, nothing when link 20 died
        Assert.All(cluster.Faults, f => Assert.True(f[1].Dropped > 0));
    }

    [Fact]
    public void OneWayDrop_BothEndsAbandonTheLink_NoLostUpdate()
    {
        using var cluster = new MultiLinkCluster(2, s_links);
        Assert.True(Wait(() => cluster.AllSee(0, up: true) && cluster.AllSee(1, up: true), TimeSpan.FromSeconds(10)), cluster.Describe());
        var churn = new Churn(cluster.Members[0], seed: 4, addressBase: 0x0A00_0000, ratePerSecond: 5_000);
        try
        {
            Assert.True(Wait(() => churn.Submitted > 2_000, TimeSpan.FromSeconds(10)));

            // Only what member 2 sends on link 10 vanishes: member 2 still hears member 1 on it, so only member 1's
            // heartbeats (no longer listing link 10 as heard) tell member 2 to move its acks and NACKs off it.
            cluster.Faults[1][0].Partitioned = true;
            Assert.True(Wait(() => cluster.AllSee(0, up: false) && cluster.AllCarryOn(1), TimeSpan.FromSeconds(5)), cluster.Describe());
            long before = churn.Submitted;
            Assert.True(Wait(() => churn.Submitted > before + 5_000, TimeSpan.FromSeconds(10)));
        }
        finally
        {
            churn.Dispose();
        }

        AssertConverged(cluster);
    }
}
