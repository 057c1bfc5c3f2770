using ClusterSync.Workload;

namespace ClusterSync.Training.Tests.Workload;

public sealed class TraceTests
{
    private static readonly TraceGeneratorOptions s_small = new() { Seed = 7, SpanSeconds = 86_400, ConnectionsPerSecond = 0.5 };

    [Fact]
    public void Generate_SameSeed_SameTrace()
    {
        var a = TraceGenerator.Generate(s_small);
        var b = TraceGenerator.Generate(s_small);
        Assert.Equal(a, b);
        var c = TraceGenerator.Generate(s_small with { Seed = 8 });
        Assert.NotEqual(a.Count == c.Count ? a.Take(100) : a, c.Take(100));
    }

    [Fact]
    public void Generate_OneDay_ServiceMixDiurnalRateAndHeavyTails()
    {
        var t = TraceGenerator.Generate(s_small);
        // Every service of the default mix shows up.
        var services = t.Select(r => r.Service).ToHashSet();
        foreach (var s in ServiceMix.Default.Services)
        {
            Assert.Contains(s.Name, services);
        }

        // Diurnal: the busiest hours (around 14:00 UTC) see clearly more new connections than the quietest (around 02:00).
        int Hour(int h) => t.Count(r => (int)TraceGenerator.HourOfDay(r.StartUnixSeconds) == h && r.Service != "scanner");
        Assert.True(Hour(14) > 1.8 * Hour(2), $"14h {Hour(14)} vs 02h {Hour(2)}");

        // Heavy tails: the longest lifetimes are orders of magnitude above the median, per long-lived service.
        var ssh = t.Where(r => r.Service == "ssh").Select(r => r.DurationSeconds).Order().ToArray();
        Assert.True(ssh[^1] > 50 * ssh[ssh.Length / 2], $"ssh median {ssh[ssh.Length / 2]}, max {ssh[^1]}");
        var dns = t.Where(r => r.Service == "dns").Select(r => r.DurationSeconds).Order().ToArray();
        Assert.True(dns[dns.Length / 2] < 0.2 && ssh[ssh.Length / 2] > 1);

        // Sorted by start, within the span.
        Assert.True(t.Zip(t.Skip(1)).All(p => p.First.StartUnixSeconds <= p.Second.StartUnixSeconds));
        Assert.All(t, r => Assert.InRange(r.StartUnixSeconds, s_small.StartUnixSeconds, s_small.StartUnixSeconds + s_small.SpanSeconds));
    }

    [Fact]
    public void Generate_Bursts_ManyConnectionsFromOneSourceWithinSeconds()
    {
        var t = TraceGenerator.Generate(s_small with { BurstsPerHour = 10 });
        var scans = t.Where(r => r.Service == "scanner").GroupBy(r => (r.SourceAddress, (long)(r.StartUnixSeconds / 5))).Max(g => g.Count());
        Assert.True(scans >= 15, $"largest 5 s group from one scanner source: {scans}");
    }

    [Fact]
    public void Csv_WriteThenRead_RoundTrips()
    {
        var t = TraceGenerator.Generate(s_small with { SpanSeconds = 3600 });
        var sw = new StringWriter();
        TraceCsv.Write(sw, t);
        var back = TraceCsv.Read(new StringReader(sw.ToString()), "mem");
        Assert.Equal(t.Count, back.Count);
        Assert.Equal(t, back);
    }

    [Fact]
    public void Csv_BadField_ErrorNamesFileLineFieldAndExpectation()
    {
        var text = TraceCsv.Header + "\n" + "1767571200.5,x,6,10.0.0.1,40000,10.0.0.2,443,web,1,2,3,4\n";
        var ex = Assert.Throws<ConfigurationException>(() => TraceCsv.Read(new StringReader(text), "t.csv"));
        Assert.Contains("t.csv:2: duration: expected a number of seconds, found 'x'", ex.Message, StringComparison.Ordinal);

        var bad = Assert.Throws<ConfigurationException>(() => TraceCsv.Read(new StringReader("a,b\n"), "t.csv"));
        Assert.Contains("t.csv:1: header: expected", bad.Message, StringComparison.Ordinal);

        var port = TraceCsv.Header + "\n" + "1767571200.5,1,6,10.0.0.1,70000,10.0.0.2,443,web,1,2,3,4\n";
        Assert.Contains("sport: expected an integer 0-65535", Assert.Throws<ConfigurationException>(() => TraceCsv.Read(new StringReader(port), "t.csv")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ChangeGenerator_Ports_ComeFromTheServiceMix()
    {
        var g = new ChangeGenerator(1, 50);
        var ports = new HashSet<(byte, ushort)>();
        var change = default(ClusterSync.Connections.ConnectionEvent);
        for (int i = 0; i < 50; i++)
        {
            g.Next(ref change, 0);
            ports.Add((change.Key.Protocol, change.Key.DestinationPort));
        }

        Assert.Subset(ServiceMix.Default.PrimaryPorts.ToHashSet(), ports);
        Assert.Equal(ServiceMix.Default.PrimaryPorts.Length, ports.Count);
    }
}
