namespace ClusterSync.IntegrationTests.Membership;

/// <summary>
/// A <see cref="LoopbackCluster"/> in high availability: a membership controller per member (priorities in member
/// order) committing into an in-memory sink, and a history of every state change for failure messages.
/// </summary>
internal sealed class HaCluster : IDisposable
{
    public HaCluster(byte[] priorities, bool preemption = false, TestTransport? transport = null)
    {
        Cluster = new LoopbackCluster(priorities.Length, transport: transport);
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

    public int ActiveCount(Func<int, bool>? include = null)
        => Controllers.Where((c, i) => include?.Invoke(i) ?? true).Count(c => c.State == MemberState.Active);

    /// <summary>True when <paramref name="observer"/> hears <paramref name="member"/> alive and Active.</summary>
    public static bool SeesActive(SyncEngine observer, byte member)
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

    /// <summary>
    /// Kills the Active (member 1) with <paramref name="kill"/>; member 2 must take over within the dead interval
    /// + 200 ms (+ 100 ms of slack) and member 3 stay Standby (exactly one new Active). Returns that deadline.
    /// </summary>
    public TimeSpan KillActiveAndAssertTakeover(Action kill)
    {
        var killed = Stopwatch.StartNew();
        kill();
        var deadline = Cluster.Members[0].Options.DeadInterval + TimeSpan.FromMilliseconds(200);
        Assert.True(LoopbackCluster.WaitUntil(() => Controllers[1].State == MemberState.Active, TimeSpan.FromSeconds(5)), "no takeover: " + Story());
        var takeover = killed.Elapsed;
        Assert.True(takeover <= deadline + TimeSpan.FromMilliseconds(100),
            $"takeover after {takeover.TotalMilliseconds:F0} ms (dead interval + 200 ms = {deadline.TotalMilliseconds:F0} ms): {Story()}");
        Assert.Equal(MemberState.Standby, Controllers[2].State);
        return deadline;
    }

    /// <summary>No synchronized connection lost: member 2 committed every one of <paramref name="synced"/>, in the state the old Active had.</summary>
    public void AssertCommittedByMember2(List<KeyValuePair<ConnectionKey, ConnectionEntry>> synced)
    {
        var committed = Sinks[1].Committed;
        Assert.Equal(synced.Count, committed.Count);
        foreach (var (key, entry) in synced)
        {
            Assert.True(committed.TryGetValue(key, out var c) && c.SameState(entry), $"{key} missing from the committed table");
        }
    }

    public void Dispose()
    {
        foreach (var c in Controllers)
        {
            c.Dispose();
        }

        Cluster.Dispose();
    }
}
