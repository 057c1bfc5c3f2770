namespace ClusterSync.Telemetry.Tests;

public sealed class TelemetryRecorderTests : IDisposable
{
    private static readonly ServiceClassDefinition[] Classes =
    [
        new("mission-critical", SyncPolicy.Full),
        new("short-lived", SyncPolicy.Delayed(TimeSpan.FromSeconds(3))),
    ];

    private readonly string _dir = Directory.CreateTempSubdirectory("cs-telemetry-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private TelemetryOptions Options(double sampleRate = 1, long capMb = 1024) => new()
    {
        Enabled = true,
        Path = Path.Combine(_dir, "t.db"),
        SampleRate = sampleRate,
        MaxSizeMegabytes = capMb,
        FlushInterval = TimeSpan.FromMilliseconds(20),
        MetricsInterval = TimeSpan.FromMilliseconds(100),
    };

    private static ConnectionOutcome Outcome(int i) => new(
        ConnectionKey.IPv4(0x0A000000u + (uint)i, 0xC0A80101, (ushort)(1024 + (i % 60000)), (ushort)(i % 2 == 0 ? 443 : 80), 6),
        (byte)(i % 2), 1_000_000 + i, 1_000_000 + i + (i * 7 % 10_000), ConnectionEndReason.Destroyed, i % 2 == 0,
        i % 2 == 0 ? 0 : 3000, i % 3 == 0 ? float.NaN : 0.25f, i % 2 == 0 ? 3 : 0, ProtocolState.TcpClose,
        new ConnectionCounters(10, 1000 + (ulong)i, 8, 5000), true);

    [Fact]
    public void OnEnded_EveryOutcome_WrittenAndExportedAsCsv()
    {
        using (var recorder = new TelemetryRecorder(Options(), 1, Classes, ["mission-critical"], () => "model:test-v1",
            () => new EngineSample(UpdatesSent: 100, BytesSent: 5000, 0, 2, 1, 0, 0, 3, 4.5, 1.5, 0.4)))
        {
            for (int i = 0; i < 20_000; i++)
            {
                recorder.OnEnded(Outcome(i));
            }

            Assert.True(SpinWait.SpinUntil(() => recorder.Written == 20_000, TimeSpan.FromSeconds(30)), $"written {recorder.Written}");
            Assert.Equal(0, recorder.Dropped);
        }

        using var reader = new TelemetryReader(Path.Combine(_dir, "t.db"));
        var records = reader.ReadLifecycles().ToList();
        Assert.Equal(20_000, records.Count);
        var r = records.Single(x => x.StartMs == 1_000_000 + 1235);
        var want = Outcome(1235);
        Assert.Equal(want.Key, r.Key);
        Assert.Equal("short-lived", r.Class);
        Assert.Equal(want.EndedMs, r.EndMs);
        Assert.Equal("delay", r.Decision);
        Assert.Equal(3000, r.DelayMs);
        Assert.Equal(0.25f, r.Score);
        Assert.Equal("model:test-v1", r.Reason);
        Assert.Equal(want.Counters, r.Counters);
        Assert.Equal("never-skip", records.Single(x => x.StartMs == 1_000_000 + 6).Reason); // class 0, no score, synced at once

        using var csv = new StringWriter();
        Assert.Equal(20_000, reader.ExportLifecycles(csv));
        var lines = csv.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(TelemetryReader.LifecycleHeader, lines[0].TrimEnd('\r'));
        Assert.Equal(20_001, lines.Length);
        Assert.Contains(lines, l => l.StartsWith("1,1001235,", StringComparison.Ordinal) && l.Contains(",10.0.4.211,", StringComparison.Ordinal)
            && l.Contains(",short-lived,delay,3,0.25,model:test-v1,false,0,destroyed,close,", StringComparison.Ordinal));

        var metrics = reader.ReadMetrics().ToList();
        Assert.NotEmpty(metrics);
        Assert.Equal(20_000, metrics.Sum(m => m["classes"].AsArray.Sum(c => c["connections"].AsInt64)));
        Assert.Equal(10_000 * 3, metrics.Sum(m => m["classes"].AsArray[0]["messages"].AsInt64));
        using var metricsCsv = new StringWriter();
        Assert.Equal(metrics.Count * 2, reader.ExportMetrics(metricsCsv));
    }

    [Fact]
    public void Metrics_EngineSampleWithTemplates_TemplatesLiveCoveredAndRecordsPerInterval()
    {
        long covered = 0;
        using (var recorder = new TelemetryRecorder(Options(), 1, Classes, engineSample: () =>
            new EngineSample(0, 0, 0, 0, 0, 0, 0, 0, 0, double.NaN, 0, TemplatesLive: 3, TemplateCovered: Interlocked.Add(ref covered, 500), TemplateRecordsSent: 7)))
        {
            Assert.True(SpinWait.SpinUntil(() => Interlocked.Read(ref covered) >= 1500, TimeSpan.FromSeconds(30)), "three metrics intervals");
        }

        using var reader = new TelemetryReader(Path.Combine(_dir, "t.db"));
        var metrics = reader.ReadMetrics().ToList();
        Assert.True(metrics.Count >= 3, $"{metrics.Count} metrics documents");
        Assert.All(metrics, m => Assert.Equal(3, m["templatesLive"].AsInt32));
        Assert.Equal(500, metrics[1]["templateCovered"].AsInt64); // per interval, not cumulative
        Assert.Equal(7, metrics.Sum(m => m["templateRecordsSent"].AsInt64));
    }

    [Fact]
    public void OnEnded_SampleRateQuarter_WritesAboutAQuarter()
    {
        using (var recorder = new TelemetryRecorder(Options(sampleRate: 0.25), 1, Classes))
        {
            for (int i = 0; i < 40_000; i++)
            {
                recorder.OnEnded(Outcome(i));
            }

            Assert.True(SpinWait.SpinUntil(() => recorder.Written > 0 && recorder.Captured == recorder.Written, TimeSpan.FromSeconds(30)));
            Assert.Equal(40_000, recorder.Ended);
        }

        using var reader = new TelemetryReader(Path.Combine(_dir, "t.db"));
        Assert.InRange(reader.ReadLifecycles().Count(), 9_000, 11_000);
    }

    [Fact]
    public void EnforceCap_FileOverCap_OldestSegmentsDeletedAndFileStaysNearCap()
    {
        var path = Path.Combine(_dir, "t.db");
        using (var recorder = new TelemetryRecorder(Options(capMb: 2), 1, Classes))
        {
            // About 100k records × 104 bytes ≈ 10 MB offered to a 2 MB cap, in rounds so retention runs between them.
            for (int round = 0; round < 20; round++)
            {
                for (int i = 0; i < 5_000; i++)
                {
                    recorder.OnEnded(Outcome((round * 5_000) + i));
                }

                long target = (round + 1) * 5_000L;
                Assert.True(SpinWait.SpinUntil(() => recorder.Written >= target, TimeSpan.FromSeconds(30)));
                if (round % 4 == 3)
                {
                    long deleted = recorder.SegmentsDeleted;
                    SpinWait.SpinUntil(() => recorder.SegmentsDeleted > deleted || new FileInfo(path).Length <= 2L << 20, TimeSpan.FromSeconds(5));
                }
            }

            Assert.True(SpinWait.SpinUntil(() => recorder.SegmentsDeleted > 0, TimeSpan.FromSeconds(10)), "retention never deleted a segment");
        }

        Assert.InRange(new FileInfo(path).Length, 0, 4L << 20);
        using var reader = new TelemetryReader(path);
        var kept = reader.ReadLifecycles().ToList();
        Assert.InRange(kept.Count, 1, 99_999);
        Assert.Contains(kept, r => r.StartMs == 1_000_000 + 99_999); // the newest stays
    }

    [Fact]
    public void TelemetryReader_NotATelemetryFile_RefusedNamingTheFile()
    {
        var path = Path.Combine(_dir, "junk.db");
        File.WriteAllText(path, "this is not a database");
        var ex = Assert.Throws<ConfigurationException>(() => new TelemetryReader(path));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }
}
