namespace ClusterSync.Training.Tests.Training;

/// <summary><c>simulate --templates</c>: static policies without and with connection templates over a trace.</summary>
public sealed class TemplateReplayTests
{
    private const double Start = 1_700_000_000;

    /// <summary><paramref name="count"/> connections of one client to one server and port, one every <paramref name="every"/> s, each living <paramref name="life"/> s.</summary>
    private static List<TraceRecord> OneShape(int count, double every, double life, string client = "10.0.0.1", ushort port = 80)
        => Enumerable.Range(0, count).Select(i => new TraceRecord(Start + (i * every), life, 6, client, (ushort)(20000 + i), "192.0.2.1", port, "", 0, 0, 0, 0)).ToList();

    [Fact]
    public void Run_BurstOfOneShape_OneTemplateAndExposureOfDelayedAndNeverPoliciesAlmostGone()
    {
        var results = TemplateReplay.Run(OneShape(10_000, 0.01, 0.5), new TemplateReplayOptions());

        Assert.Equal(["sync-all", "static-3s", "static-30s", "never"], results.Select(r => r.Name));
        Assert.All(results, r => Assert.Equal(1, r.TemplatesCreated));
        Assert.All(results, r => Assert.Equal(10_000 - 20, r.Covered));
        Assert.All(results, r => Assert.InRange(r.TemplateMessages, 1, 5)); // 100 s of connections, 60 s lifetime: creation + a keep-alive every 30 s
        var s3 = results[1];
        Assert.Equal(0, s3.Messages); // every connection ends before 3 s
        Assert.Equal(s3.Messages + s3.TemplateMessages, s3.MessagesWithTemplates);
        Assert.Equal(10_000 * 0.5, s3.ExposureSeconds, 6);
        // Only the 20 before the template, and only until it was made (0.19 s in): Σ (0.19 − 0.01 k), k = 0..19.
        Assert.Equal(1.9, s3.ExposureSecondsWithTemplates, 4); // (start times near 1.7e9 s: microsecond rounding)
        Assert.Equal(0, results[0].ExposureSeconds); // sync-all: nothing to remove
        Assert.Equal(0, results[0].ExposureSecondsWithTemplates);
    }

    [Fact]
    public void Run_EveryConnectionOfAnotherShape_NoTemplateAndNothingChanges()
    {
        var records = Enumerable.Range(0, 2000).Select(i => new TraceRecord(Start + i, 2, 6, $"10.0.{i / 250}.{i % 250}", 30000, "192.0.2.1", 80, "", 0, 0, 0, 0)).ToList();

        var results = TemplateReplay.Run(records, new TemplateReplayOptions());

        Assert.All(results, r =>
        {
            Assert.Equal(0, r.TemplatesCreated);
            Assert.Equal(r.Messages, r.MessagesWithTemplates);
            Assert.Equal(r.ExposureSeconds, r.ExposureSecondsWithTemplates);
        });
    }

    [Fact]
    public void Run_ShapeStopsLongerThanTheLifetime_TemplateExpiresAndIsMadeAgain()
    {
        var first = OneShape(100, 0.1, 1);                                                     // 10 s of connections
        var second = OneShape(100, 0.1, 1).Select(r => r with { StartUnixSeconds = r.StartUnixSeconds + 200 }); // after a 190 s pause

        var results = TemplateReplay.Run([.. first, .. second], new TemplateReplayOptions(LifetimeSeconds: 60));

        Assert.Equal(2, results[1].TemplatesCreated);
        Assert.Equal(2 * (100 - 20), results[1].Covered);
    }

    [Fact]
    public void Run_IcmpConnections_NeverCovered()
    {
        var records = OneShape(500, 0.01, 1).Select(r => r with { Protocol = 1, SourcePort = 0, DestinationPort = 0 }).ToList();

        var results = TemplateReplay.Run(records, new TemplateReplayOptions());

        Assert.All(results, r => Assert.Equal(0, r.Covered));
    }

    [Fact]
    public void Run_LongConnectionsCoveredByAShortLifetime_OnlyTheirCoveredPartRemoved()
    {
        // 200 connections of 100 s, one every 0.1 s (20 s of them), lifetime 2 s: the template lives from 1.9 s (the 20th)
        // to 2 s after its last keep-alive (19.9 s): 21.9 s; the first 19 are covered 20 s, the later ones until 21.9 s.
        var results = TemplateReplay.Run(OneShape(200, 0.1, 100), new TemplateReplayOptions(LifetimeSeconds: 2));
        var s30 = results[2];

        Assert.Equal(200 * 2, s30.Messages);                 // every one outlives 30 s: still announced
        Assert.Equal(200 * 30, s30.ExposureSeconds, 6);
        Assert.InRange(s30.ExposureSecondsWithTemplates, 6000 - 2371 - 1, 6000 - 2371 + 1); // 2,371 s covered in all
    }

    [Fact]
    public void Run_WithAnAdaptiveBudget_ControllerRowWithTemplatesNeverCostsMoreThanItsRecordsAndExposesNoMore()
    {
        // One shape of short connections, and connections of their own shape (never covered) in between.
        var records = OneShape(3000, 0.05, 0.4)
            .Concat(Enumerable.Range(0, 300).Select(i => new TraceRecord(Start + (i * 0.5), i % 3 == 0 ? 60 : 1, 6, $"10.9.{i / 250}.{i % 250}", 40000, "192.0.2.9", 443, "", 0, 0, 0, 0)))
            .ToList();

        var results = TemplateReplay.Run(records, new TemplateReplayOptions(), adaptiveBudget: 0.01);

        var a = results[4];
        Assert.Equal("adaptive@0.01", a.Name);
        Assert.True(a.MessagesWithTemplates <= a.Messages + a.TemplateMessages, a.ToString());
        Assert.True(a.ExposureSecondsWithTemplates <= a.ExposureSeconds, a.ToString());
        Assert.Equal(3000 - 20, a.Covered);
    }
}
