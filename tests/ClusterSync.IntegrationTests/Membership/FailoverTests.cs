using System.Diagnostics;
using ClusterSync.Engine;
using ClusterSync.Membership;

namespace ClusterSync.IntegrationTests.Membership;

/// <summary>High availability on loopback: the Active member dies, the best Standby commits its replica and takes over.</summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class FailoverTests
{
    private sealed class HaCluster : IDisposable
    {
        public LoopbackCluster Cluster { get; }

        public List<MembershipController> Controllers { get; } = [];

        public List<InMemoryReplicaSink> Sinks { get; } = [];

        public List<string> History { get; } = [];

        public string Story()
        {
            lock (History)
            {
                return string.Join("; ", History);
            }
        }

        public HaCluster(byte[] priorities, bool preemption = false)
        {
            Cluster = new LoopbackCluster(priorities.Length);
            for (int i = 0; i < priorities.Length; i++)
            {
                var sink = new InMemoryReplicaSink();
                Sinks.Add(sink);
                var controller = new MembershipController(Cluster.Members[i], new MembershipOptions { Priority = priorities[i], Preemption = preemption }, sink);
                int member = i + 1;
                var sw = Stopwatch.StartNew();
                controller.StateChanged += (from, to) => { lock (History) { History.Add($"{sw.ElapsedMilliseconds}ms m{member}: {from}->{to}"); } };
                Controllers.Add(controller);
            }
        }

        public int ActiveCount(Func<int, bool>? include = null)
            => Controllers.Where((c, i) => include?.Invoke(i) ?? true).Count(c => c.State == MemberState.Active);

        public void Dispose()
        {
            foreach (var c in Controllers)
            {
                c.Dispose();
            }

            Cluster.Dispose();
        }
    }

    internal static bool SeesActive(SyncEngine observer, byte member)
    {
        Span<MemberView> views = stackalloc MemberView[8];
        int n = observer.GetPeerViews(views);
        foreach (var v in views[..n])
        {
            if (v.Id == member && v.Alive && v.State == MemberState.Active)
            {
                return true;
            }
        }

        return false;
    }

    [Fact]
    public void Start_ThreeMembers_HighestPriorityBecomesActiveOthersStandby()
    {
        using var ha = new HaCluster([100, 200, 150]);
        Assert.True(LoopbackCluster.WaitUntil(() => ha.Controllers[1].State == MemberState.Active
            && ha.Controllers[0].State == MemberState.Standby && ha.Controllers[2].State == MemberState.Standby, TimeSpan.FromSeconds(10)),
            string.Join(", ", ha.Controllers.Select(c => c.State)));
        Assert.Equal(1, ha.ActiveCount());
    }

    [Fact]
    public void ActiveKilled_StandbyTakesOverWithinDeadIntervalAndCommitsEverySyncedConnection()
    {
        using var ha = new HaCluster([200, 150, 100]);
        Assert.True(LoopbackCluster.WaitUntil(() => ha.Controllers[0].State == MemberState.Active && ha.Controllers[1].State == MemberState.Standby, TimeSpan.FromSeconds(10)));
        var active = ha.Cluster.Members[0];
        LoopbackCluster.Drive(active, 30_000, seed: 7, population: 10_000);
        LoopbackCluster.AssertIdentical(active, ha.Cluster.Members[1], TimeSpan.FromSeconds(30));
        var synced = active.SnapshotTable();
        Assert.True(LoopbackCluster.WaitUntil(() => SeesActive(ha.Cluster.Members[1], 1), TimeSpan.FromSeconds(5)), "member 2 never heard member 1 as Active");

        // Kill the Active: its engine stops dead (no goodbye), as with SIGKILL.
        var killed = Stopwatch.StartNew();
        active.Crash();
        var deadline = active.Options.DeadInterval + TimeSpan.FromMilliseconds(200);
        Assert.True(LoopbackCluster.WaitUntil(() => ha.Controllers[1].State == MemberState.Active, TimeSpan.FromSeconds(5)), "no takeover");
        var takeover = killed.Elapsed;
        Assert.True(takeover <= deadline + TimeSpan.FromMilliseconds(100), $"takeover after {takeover.TotalMilliseconds:F0} ms (dead interval + 200 ms = {deadline.TotalMilliseconds:F0} ms): {ha.Story()}");
        Assert.Equal(MemberState.Standby, ha.Controllers[2].State); // exactly one new Active

        var committed = ha.Sinks[1].Committed;
        Assert.Equal(synced.Count, committed.Count);
        foreach (var (key, entry) in synced)
        {
            Assert.True(committed.TryGetValue(key, out var c) && c.SameState(entry), $"{key} missing from the committed table");
        }

        Assert.True(ha.Controllers[1].Failovers == 1, ha.Story());
        Assert.InRange(ha.Controllers[1].LastFailoverMilliseconds, active.Options.DeadInterval.TotalMilliseconds - 110, deadline.TotalMilliseconds + 100);
    }

    [Fact]
    public void NewActive_ServesTakenOverConnections_UpdatesReachRemainingStandby()
    {
        using var ha = new HaCluster([200, 150, 100]);
        Assert.True(LoopbackCluster.WaitUntil(() => ha.Controllers[0].State == MemberState.Active, TimeSpan.FromSeconds(10)));
        LoopbackCluster.Drive(ha.Cluster.Members[0], 5_000, seed: 8, population: 2_000);
        LoopbackCluster.AssertIdentical(ha.Cluster.Members[0], ha.Cluster.Members[2], TimeSpan.FromSeconds(30));
        ha.Cluster.Members[0].Dispose();
        Assert.True(LoopbackCluster.WaitUntil(() => ha.Controllers[1].State == MemberState.Active, TimeSpan.FromSeconds(5)));

        // The same workload continues on the new Active (same seed: updates and destroys of the taken-over connections).
        LoopbackCluster.Drive(ha.Cluster.Members[1], 5_000, seed: 8, population: 2_000);
        LoopbackCluster.AssertIdentical(ha.Cluster.Members[1], ha.Cluster.Members[2], TimeSpan.FromSeconds(30));
        Assert.Contains(ha.Cluster.Members[2].SnapshotTable(), kv => kv.Value.Owner == 2);
    }
}
