using ClusterSync.Workload.Trace;

namespace ClusterSync.Training.Tests.Training;

/// <summary>The in-sample <c>best-per-service</c> reference of <c>simulate</c>: one grid delay per service at one price.</summary>
public sealed class ServiceBoundTests
{
    [Fact]
    public void Compute_LongAndShortServices_SyncsTheLongAtOnceAndNeverTheShort()
    {
        // ssh always outlives 3 s, dns never does: at static 3 s's messages the best per-service rule syncs ssh at once
        // (no exposure) and never dns (its lifetime is its exposure) — the oracle, since the service says it all.
        var records = new List<TraceRecord>();
        for (int i = 0; i < 100; i++)
        {
            records.Add(Record(i, 100, 6, 22));
            records.Add(Record(i + 0.5, 0.1, 17, 53));
        }

        var static3 = new PolicySimulator(records, null).Static("s", 3);
        var bound = ServiceBound.Compute(records, static3.Messages, static3.ExposureSeconds);

        Assert.Equal(2, bound.Services);
        Assert.Equal(static3.Messages, bound.AtMessages.Messages, 6);
        Assert.Equal(100 * 0.1, bound.AtMessages.ExposureSeconds, 6);
        Assert.Equal("", bound.AtMessages.MixedService);
        Assert.True(bound.AtExposure.Messages <= static3.Messages);
        Assert.True(bound.AtExposure.ExposureSeconds <= static3.ExposureSeconds + 1e-6);
    }

    [Fact]
    public void Compute_OneServiceHalfShortHalfLong_MixesTwoDelaysWhereTheConstraintBinds()
    {
        // One service, n connections of 1 s and n of 100 s. Its useful delays: never (0 syncs, 101 n s), 1 s (n syncs,
        // 2 n s), now (2 n syncs, 0 s). Static 3 s: n syncs, 4 n s.
        const int n = 50;
        var records = new List<TraceRecord>();
        for (int i = 0; i < n; i++)
        {
            records.Add(Record(i, 1, 6, 9200));
            records.Add(Record(i + 0.5, 100, 6, 9200));
        }

        var static3 = new PolicySimulator(records, null).Static("s", 3);
        Assert.Equal(2 * n, static3.Messages);
        Assert.Equal(4.0 * n, static3.ExposureSeconds, 6);
        var bound = ServiceBound.Compute(records, static3.Messages, static3.ExposureSeconds);

        // At static 3 s's messages: the 1 s delay for all, exactly n syncs — no mixing needed.
        Assert.Equal(2.0 * n, bound.AtMessages.ExposureSeconds, 6);
        Assert.Equal(2.0 * n, bound.AtMessages.Messages, 6);

        // At static 3 s's exposure (4 n s): between never and 1 s, a share f = 97/99 of the connections at 1 s.
        Assert.Equal(4.0 * n, bound.AtExposure.ExposureSeconds, 6);
        Assert.Equal(2.0 * n * 97 / 99, bound.AtExposure.Messages, 6);
        Assert.Equal("6/9200", bound.AtExposure.MixedService);
        Assert.Equal(99.0, bound.AtExposure.Price, 6); // exposure saved per extra sync on that step: (101 n − 2 n) / n
    }

    [Fact]
    public void Compute_RarePorts_PooledIntoOneServicePerProtocol()
    {
        // A scanner: 300 connections on 300 different ports, each rarer than MinConnections.
        var records = Enumerable.Range(0, 300).Select(i => Record(i, i % 2 == 0 ? 1.5 : 10, 6, (ushort)(1000 + i))).ToList();
        var static3 = new PolicySimulator(records, null).Static("s", 3);
        var bound = ServiceBound.Compute(records, static3.Messages, static3.ExposureSeconds);

        Assert.Equal(0, bound.Services);
        Assert.Equal(300, bound.PooledConnections);
        // One pooled service cannot tell its halves apart (1.5 s and 10 s): a 2 s hold for all of them at best, 78 % of
        // static 3 s's exposure, where 300 services known one by one would be the oracle (33 %).
        Assert.True(bound.AtMessages.ExposureSeconds > 0.5 * static3.ExposureSeconds, $"{bound.AtMessages}");
    }

    [Fact]
    public void Compute_GeneratedTrace_NoWorseThanStatic3sAndNoBetterThanTheOracle()
    {
        var records = TraceGenerator.Generate(new TraceGeneratorOptions { Seed = 5, SpanSeconds = 4 * 3600, ConnectionsPerSecond = 1 });
        var sim = new PolicySimulator(records, null);
        var static3 = sim.Static("s", 3);
        var oracle = sim.Oracle("o", 3);
        var bound = ServiceBound.Compute(records, static3.Messages, static3.ExposureSeconds);

        Assert.True(bound.AtMessages.Messages <= static3.Messages + 1e-6);
        Assert.InRange(bound.AtMessages.ExposureSeconds, oracle.ExposureSeconds, static3.ExposureSeconds + 1e-6);
        Assert.True(bound.AtExposure.ExposureSeconds <= static3.ExposureSeconds + 1e-6);
        Assert.True(bound.AtExposure.Messages <= static3.Messages + 1e-6);
        // Static 3 s is itself one delay per service, so at its messages the bound is strictly better on a real mix.
        Assert.True(bound.AtMessages.ExposureSeconds < static3.ExposureSeconds, $"{bound.AtMessages} vs {static3}");
    }

    private static TraceRecord Record(double start, double life, byte proto, ushort port)
        => new(1_700_000_000 + start, life, proto, "10.0.0.1", 40000, "10.0.0.2", port, "", 0, 0, 0, 0);
}
