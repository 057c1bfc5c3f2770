using ClusterSync.Templates;

namespace ClusterSync.IntegrationTests.Plugins;

/// <summary>
/// The optional template contract (<see cref="IReplicaTemplateSink"/>): a plugin sink that implements it receives the
/// live templates of a takeover after the connections of the same takeover, off the caller's thread; a failure there is
/// reported and leaves the in-process sink answering; a sink without it sees connections only.
/// </summary>
public sealed class NodeDataPlaneTemplateTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static readonly ConnectionTemplate Template = new(
        ConnectionKey.IPv4(0x0A00_0001u, 0xC633_6401u, 0, 443, 6, 2), Owner: 1, ServiceClass: 3, Count: 20, LifetimeSeconds: 60,
        CreatedMs: 1_000, UpdatedMs: 5_000, Version: 7);

    [Fact]
    public void CommitTemplates_TemplateSink_ReceivesThemAfterTheCommit()
    {
        var sink = new RecordingTemplateSink();
        using var plane = NodeDataPlane.ForTests(null, sink, TimeSpan.FromMinutes(1), TimeProvider.System);
        var inner = new InMemoryReplicaSink();
        var chained = plane.WrapSink(inner);

        chained.Commit([]);
        ((ITemplateSink)chained).CommitTemplates([Template]);

        Assert.True(sink.Templates.Wait(Bound), "the plugin's sink never received the templates");
        Assert.Equal(["commit", "templates"], sink.Calls);
        var t = Assert.Single(sink.Received!);
        Assert.Equal(Template.Key, t.Shape);
        Assert.Equal(3, t.ServiceClass);
        Assert.Equal(60u, t.LifetimeSeconds);
        Assert.Equal(Template.ExpiresAtMs, t.ExpiresAtMs);
        Assert.Single(inner.CommittedTemplates);
        plane.Stop(Bound);
        Assert.Equal(1, plane.GetStatus().SinkTemplateCommits);
        Assert.Null(plane.GetStatus().Failure);
    }

    [Fact]
    public void CommitTemplates_TemplateSinkThrows_FailureReportedInProcessSinkStillAnswers()
    {
        var sink = new RecordingTemplateSink { Throw = true };
        using var plane = NodeDataPlane.ForTests(null, sink, TimeSpan.FromMinutes(1), TimeProvider.System);
        var inner = new InMemoryReplicaSink();
        var chained = plane.WrapSink(inner);

        chained.Commit([]);
        ((ITemplateSink)chained).CommitTemplates([Template]);
        plane.Stop(Bound);

        var status = plane.GetStatus();
        Assert.Contains("connection templates", status.Failure, StringComparison.Ordinal);
        Assert.Equal(1, status.SinkExceptions);
        Assert.Equal(0, status.SinkTemplateCommits);
        var key = ConnectionKey.IPv4(0x0A00_0001u, 0xC633_6401u, 40_000, 443, 6, 2);
        Assert.Equal(ConnectionAcceptance.PickedUpByTemplate, inner.Accept(key, 6_000, owner: 2));
    }

    [Fact]
    public void CommitTemplates_SinkWithoutTheInterface_OnlyTheInProcessSinkGetsThem()
    {
        var sink = new PlainSink();
        using var plane = NodeDataPlane.ForTests(null, sink, TimeSpan.FromMinutes(1), TimeProvider.System);
        var inner = new InMemoryReplicaSink();
        var chained = plane.WrapSink(inner);

        chained.Commit([]);
        ((ITemplateSink)chained).CommitTemplates([Template]);
        plane.Stop(Bound);

        Assert.Equal(1, sink.Commits);
        Assert.Single(inner.CommittedTemplates);
        Assert.Equal(0, plane.GetStatus().SinkTemplateCommits);
        Assert.Null(plane.GetStatus().Failure);
    }

    private sealed class RecordingTemplateSink : IReplicaSink, IReplicaTemplateSink
    {
        public bool Throw { get; init; }

        public List<string> Calls { get; } = [];

        public IReadOnlyList<ReplicaTemplate>? Received { get; private set; }

        public ManualResetEventSlim Templates { get; } = new(false);

        public string Name => "template-sink";

        public void Commit(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica)
        {
            lock (Calls)
            {
                Calls.Add("commit");
            }
        }

        public void CommitTemplates(IReadOnlyList<ReplicaTemplate> templates)
        {
            lock (Calls)
            {
                Calls.Add("templates");
            }

            if (Throw)
            {
                throw new InvalidOperationException("nft refused");
            }

            Received = [.. templates];
            Templates.Set();
        }
    }

    private sealed class PlainSink : IReplicaSink
    {
        public int Commits { get; private set; }

        public string Name => "plain-sink";

        public void Commit(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica) => Commits++;
    }
}
