using ClusterSync.Core.Tests.Membership;
using ClusterSync.Policy;
using ClusterSync.Table;
using ClusterSync.Templates;

namespace ClusterSync.Core.Tests.Templates;

/// <summary>
/// Connection templates end to end in one process (docs/templates.md): real stepped engines and controllers on one fake
/// clock (<see cref="SteppedCluster"/>), member 1 Active, member 2 Standby. The short-lived class (tcp/80, delayed 3 s)
/// makes templates: 20 connections of one shape within 10 s.
/// </summary>
public sealed class TemplateClusterTests
{
    private const uint Client = 0x0A00_0001;
    private const uint OtherClient = 0x0A00_0002;

    private static PolicyOptions Policy(double lifetimeSeconds = 60, string templatedClass = EngineKit.ShortLived)
    {
        var p = EngineKit.TestPolicy();
        return p with
        {
            Classes = [.. p.Classes.Select(c => c.Name == templatedClass
                ? c with { Templates = new TemplateOptions { Threshold = 20, WindowSeconds = 10, LifetimeSeconds = lifetimeSeconds } }
                : c)],
        };
    }

    private static ConnectionKey Conn(int sourcePort, uint client = Client, ushort port = 80) => EngineKit.Tcp(port, (ushort)sourcePort, client);

    private static SteppedCluster Start(PolicyOptions policy)
    {
        var c = new SteppedCluster([(1, 200), (2, 100)], policy: policy);
        c.RunUntil(() => c[1].State == MemberState.Active && c[2].State == MemberState.Standby, Dead * 20, "member 1 Active, member 2 Standby");
        return c;
    }

    /// <summary>
    /// <paramref name="count"/> short connections of one client to one server and port on <paramref name="member"/>: 50 open
    /// every step (5 ms) and close at the next, so each lives one step.
    /// </summary>
    private static void Burst(SteppedCluster c, Member member, int count, int firstPort = 1024, ushort port = 80)
    {
        var open = new List<ConnectionKey>();
        for (int i = 0; i < count || open.Count > 0; i += 50)
        {
            foreach (var k in open)
            {
                member.Engine.Submit(EngineKit.Destroy(k));
            }

            open.Clear();
            for (int j = i; j < Math.Min(count, i + 50); j++)
            {
                var k = Conn(firstPort + j, port: port);
                member.Engine.Submit(EngineKit.New(k));
                open.Add(k);
            }

            c.Step();
        }
    }

    private static long NowMs(SteppedCluster c) => c.Time.GetUtcNow().ToUnixTimeMilliseconds();

    [Fact]
    public void Burst_10000ShortConnectionsOfOneShape_OneTemplateAndNoConnectionRecords()
    {
        using var c = Start(Policy());
        long updatesBefore = c[1].Engine.Counters.UpdatesSent;
        int datagramsBefore = c[1].Channel.DataSent.GetValueOrDefault((byte)2);

        Burst(c, c[1], 10_000);
        c.Run(Tick * 4);

        var k = c[1].Engine.Counters;
        Assert.Equal(1, k.TemplatesCreated);
        Assert.InRange(k.TemplateRecordsSent, 1, 3); // O(1): the creation (a keep-alive only after half the 60 s lifetime)
        Assert.Equal(updatesBefore + k.TemplateRecordsSent, k.UpdatesSent); // records sent: the template only, not one of the 10,000 connections
        Assert.InRange(c[1].Channel.DataSent.GetValueOrDefault((byte)2) - datagramsBefore, 1, 3);
        Assert.Equal(10_000 - 20, k.TemplateCovered);
        Assert.InRange(k.TemplateCoveredEnded, 10_000 - 20, 10_000); // those of the creating step end covered too (the same instant)
        Assert.True(k.TemplateExposureRemovedMs >= (10_000 - 20) * 5, $"exposure removed {k.TemplateExposureRemovedMs} ms");

        var held = Assert.Single(c[2].Engine.SnapshotTemplates());
        Assert.Equal(TemplateKeys.ShapeOf(Conn(1024)), held.Key);
        Assert.Equal((byte)1, held.Owner);
        Assert.Equal(1, c[2].Engine.Counters.TemplateRecordsApplied);
        Assert.Equal(0, c[2].Engine.Counters.TotalDrops);
    }

    [Fact]
    public void Failover_NeverSynchronizedConnectionMatchingATemplate_IsPickedUpAndOneMatchingNoneIsRefused()
    {
        using var c = Start(Policy());
        Burst(c, c[1], 1000);
        var midFlight = Conn(50_000);                       // the template's shape, never synchronized (delayed 3 s)
        var unmatched = Conn(50_001, client: OtherClient);  // same server and port, another client: no template
        var otherPort = Conn(50_002, port: 8080);           // default class, synced at once: committed as usual
        c[1].Engine.Submit(EngineKit.New(midFlight));
        c[1].Engine.Submit(EngineKit.New(unmatched));
        c.Run(Tick * 10);
        Assert.False(c[2].Engine.TryGetEntry(midFlight, out _));
        Assert.False(c[2].Engine.TryGetEntry(unmatched, out _));

        c[1].Engine.Submit(EngineKit.New(otherPort));
        c.Run(Tick * 2);
        c[1].Up = false; // crashes
        c.RunUntil(() => c[2].State == MemberState.Active, Dead * 3, "member 2 takes over");

        var sink = c[2].Sink;
        Assert.Single(sink.CommittedTemplates);
        long now = NowMs(c);
        Assert.Equal(ConnectionAcceptance.PickedUpByTemplate, sink.Accept(midFlight, now, owner: 2));
        Assert.Equal(ConnectionAcceptance.Refused, sink.Accept(unmatched, now, owner: 2));
        Assert.Equal(ConnectionAcceptance.Committed, sink.Accept(otherPort, now, owner: 2));
        Assert.Equal(ConnectionAcceptance.Committed, sink.Accept(midFlight, now, owner: 2)); // created on the spot
        Assert.Equal(1, sink.PickedUpByTemplate);
        Assert.Equal(1, sink.Refused);
        Assert.Equal((byte)2, sink.Committed[midFlight].Owner);
    }

    [Fact]
    public void Failover_AfterTheTemplateExpired_RefusesItsShape()
    {
        using var c = Start(Policy(lifetimeSeconds: 1));
        Burst(c, c[1], 1000);
        c.Run(TimeSpan.FromSeconds(1.2));
        c[1].Up = false;
        c.RunUntil(() => c[2].State == MemberState.Active, Dead * 3, "member 2 takes over");

        Assert.Empty(c[2].Sink.CommittedTemplates);
        Assert.Equal(ConnectionAcceptance.Refused, c[2].Sink.Accept(Conn(60_000), NowMs(c), owner: 2));
    }

    [Fact]
    public void Templates_NoMoreConnectionsOfTheShape_ExpireAndAreRemovedOnEveryMember()
    {
        using var c = Start(Policy(lifetimeSeconds: 2));
        Burst(c, c[1], 1000);
        Assert.Equal(1, c[1].Engine.LiveTemplateCount);
        Assert.Equal(1, c[2].Engine.LiveTemplateCount);

        c.Run(TimeSpan.FromSeconds(1.5));
        Assert.Equal(1, c[2].Engine.LiveTemplateCount); // within its lifetime

        c.Run(TimeSpan.FromSeconds(1));
        Assert.Equal(0, c[1].Engine.LiveTemplateCount);
        Assert.Equal(0, c[2].Engine.LiveTemplateCount);
        Assert.Equal(1, c[1].Engine.Counters.TemplatesExpired);
        Assert.Equal(1, c[2].Engine.Counters.TemplatesExpired);
        Assert.False(c[2].Engine.TryMatchTemplate(Conn(7), out _));
    }

    [Fact]
    public void Templates_ConnectionsKeepComing_KeptAliveWithAboutOneRecordPerHalfLifetime()
    {
        using var c = Start(Policy(lifetimeSeconds: 2));
        Burst(c, c[1], 100);
        for (int second = 0; second < 6; second++)
        {
            for (int i = 0; i < 10; i++)
            {
                Burst(c, c[1], 2, firstPort: 2000 + (second * 100) + (i * 2)); // 2 connections every 100 ms
                c.Run(TimeSpan.FromMilliseconds(90));
            }
        }

        Assert.Equal(1, c[1].Engine.Counters.TemplatesCreated);
        Assert.Equal(1, c[2].Engine.LiveTemplateCount); // 6 s, three lifetimes: still live on the Standby
        Assert.InRange(c[1].Engine.Counters.TemplateRecordsSent, 5, 8); // the creation, then one a second
        Assert.Equal(0, c[2].Engine.Counters.TemplatesExpired);
    }

    [Fact]
    public void Templates_ClassSyncedAtOnce_StillSendsEveryConnection()
    {
        using var c = Start(Policy(templatedClass: EngineKit.Full));
        long before = c[1].Engine.Counters.UpdatesSent;
        Burst(c, c[1], 100, port: 443);
        c.Run(Tick * 4);

        Assert.Equal(1, c[1].Engine.Counters.TemplatesCreated);
        Assert.Equal(1, c[2].Engine.LiveTemplateCount);
        Assert.True(c[1].Engine.Counters.UpdatesSent - before >= 100, "each connection announced at once, as its class says");
        Assert.Equal(0, c[1].Engine.Counters.TemplateCoveredEnded); // announced: the template removed no exposure
    }

    [Fact]
    public void Templates_ClassWithoutTemplates_MakesNone()
    {
        using var c = Start(EngineKit.TestPolicy());
        Burst(c, c[1], 1000);

        Assert.Equal(0, c[1].Engine.Counters.TemplatesCreated);
        Assert.Equal(0, c[1].Engine.Counters.TemplateCovered);
        Assert.Equal(0, c[2].Engine.LiveTemplateCount);
    }

    [Fact]
    public void SnapshotCut_ReannouncesLiveTemplatesOnTheDeltaStream()
    {
        using var c = Start(Policy());
        Burst(c, c[1], 100);
        long sent = c[1].Engine.Counters.TemplateRecordsSent;
        long stale = c[2].Engine.Counters.TemplateRecordsStale;

        c[1].Engine.CutSnapshot();
        c.Run(Tick * 2);

        Assert.Equal(sent + 1, c[1].Engine.Counters.TemplateRecordsSent);
        Assert.Equal(stale + 1, c[2].Engine.Counters.TemplateRecordsStale); // it holds that version already
    }

    /// <summary>A decider that says the same for every connection (the adaptive controller's place in the engine).</summary>
    private sealed class FixedDecider(SyncDecision decision) : ISyncDecider
    {
        public SyncDecision Decide(in ConnectionKey key, in ConnectionEntry entry, byte serviceClass, SyncPolicy classPolicy) => decision;

        public SyncDecision Revise(in ConnectionKey key, in ConnectionEntry entry, in ConnectionCounters counters, bool hasCounters, byte serviceClass, long ageMs)
            => SyncDecision.Now();
    }

    [Fact]
    public void Decider_DelayedConnectionCoveredByATemplate_LeftUnsynchronized()
    {
        using var c = Start(Policy());
        c[1].Engine.Decider = new FixedDecider(SyncDecision.After(200));
        Burst(c, c[1], 100);                      // makes the template; all end before 200 ms
        var covered = Conn(40_000);
        var uncovered = Conn(40_001, client: OtherClient);
        c[1].Engine.Submit(EngineKit.New(covered));
        c[1].Engine.Submit(EngineKit.New(uncovered));
        c.Run(TimeSpan.FromMilliseconds(400));    // past the 200 ms delay: the uncovered one is announced

        Assert.True(c[2].Engine.TryGetEntry(uncovered, out _));
        Assert.False(c[2].Engine.TryGetEntry(covered, out _));
        Assert.Equal(100 - 20 + 1, c[1].Engine.Counters.TemplateUnsynced);
    }

    [Fact]
    public void Decider_CoveredConnectionEnds_OutcomeReportsTheDecidedDelayUnsyncedSoTheControllersLedgerStaysConsistent()
    {
        using var c = Start(Policy());
        c[1].Engine.Decider = new FixedDecider(SyncDecision.After(200));
        Burst(c, c[1], 100);
        var outcomes = new OutcomeList();
        c[1].Engine.OutcomeSink = outcomes;
        var covered = Conn(40_000);
        c[1].Engine.Submit(EngineKit.New(covered));
        c.Run(TimeSpan.FromMilliseconds(1000));   // lives five times its decided delay, never announced
        c[1].Engine.Submit(EngineKit.Destroy(covered));

        var o = Assert.Single(outcomes.Items, o => o.Key == covered);
        Assert.False(o.Synced);
        Assert.Equal(0, o.Messages);
        Assert.Equal(DelayGrid.Decode(DelayGrid.Encode(200)), o.SyncDelayMs); // the decision it was registered with, not "never"
        Assert.Equal(o.SyncDelayMs, o.ExposureMs);                              // exposed for its delay; the template stands for it after
        Assert.True(o.LifetimeMs >= 1000);
        Assert.False(c[2].Engine.TryGetEntry(covered, out _));
    }

    private sealed class OutcomeList : IConnectionOutcomeSink
    {
        public List<ConnectionOutcome> Items { get; } = [];

        public void OnEnded(in ConnectionOutcome outcome) => Items.Add(outcome);
    }

    [Fact]
    public void Decider_NowForACoveredConnection_StillSyncedAtOnce()
    {
        using var c = Start(Policy());
        c[1].Engine.Decider = new FixedDecider(SyncDecision.After(200));
        Burst(c, c[1], 100);
        c[1].Engine.Decider = new FixedDecider(SyncDecision.Now());
        var covered = Conn(40_000);
        c[1].Engine.Submit(EngineKit.New(covered));
        c.Run(Tick * 2);

        Assert.True(c[2].Engine.TryGetEntry(covered, out _));
        Assert.Equal(100 - 20, c[1].Engine.Counters.TemplateUnsynced);
    }

    [Fact]
    public void LoadSharing_MemberDies_SurvivorsOwnershipCommitCarriesTheLiveTemplates()
    {
        using var c = new SteppedCluster([(1, 100), (2, 100)], mode: ClusterMode.LoadSharing, policy: Policy());
        c.RunUntil(() => c[1].Controller.Owners.SequenceEqual(new byte[] { 1, 2 }) && c[2].Controller.Owners.SequenceEqual(new byte[] { 1, 2 }), Dead * 20, "both own");
        Burst(c, c[1], 1000);
        c.Run(Tick * 4);
        Assert.Equal(1, c[2].Engine.LiveTemplateCount);
        long changes = c[2].Controller.OwnershipChanges;

        c[1].Up = false; // crashes: member 2 takes its share over
        c.RunUntil(() => c[2].Controller.OwnershipChanges > changes, Dead * 3, "member 2 owns member 1's share");

        var sink = c[2].Sink;
        Assert.Equal(TemplateKeys.ShapeOf(Conn(1024)), Assert.Single(sink.CommittedTemplates).Key);
        Assert.Equal(ConnectionAcceptance.PickedUpByTemplate, sink.Accept(Conn(50_000), NowMs(c), owner: 2));
        Assert.Equal(ConnectionAcceptance.Refused, sink.Accept(Conn(50_001, client: OtherClient), NowMs(c), owner: 2));
    }
}
