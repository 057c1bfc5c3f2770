using ClusterSync.Node.DataPlanes;
using Spectre.Console;

namespace ClusterSync.IntegrationTests.Demo;

/// <summary>The comparison behind <c>demo</c> and <c>bench failover</c>, and its record encoding (no network).</summary>
public sealed class FailoverAccountingTests
{
    private static ConnectionKey Key(int i, ushort port = 443) => ConnectionKey.IPv4(0x0A00_0000u + (uint)i, 0xC0A8_0001, (ushort)(1024 + i), port, 6);

    private static ConnectionEntry Entry(ulong version) => new() { Version = version, Owner = 1, CreatedMs = 1, UpdatedMs = 2, TimeoutSeconds = 60 };

    private static Dictionary<ConnectionKey, ConnectionEntry> Table(params int[] keys) => keys.ToDictionary(k => Key(k), k => Entry((ulong)k + 1));

    [Fact]
    public void Compare_EverySyncedConnectionCommitted_NoSynchronizedLoss()
    {
        var alive = new Dictionary<ConnectionKey, string> { [Key(1)] = "a", [Key(2)] = "a", [Key(3)] = "b" };
        var tally = FailoverAccounting.Compare(alive, [Table(1, 2), Table(1, 2)], Table(1, 2));

        Assert.Equal(new ClassTally { Alive = 3, Synced = 2, Preserved = 2, LostSynced = 0, LostUnsynced = 1 }, tally.Total);
        Assert.Equal(new ClassTally { Alive = 2, Synced = 2, Preserved = 2 }, tally.ByClass["a"]);
        Assert.Equal(new ClassTally { Alive = 1, LostUnsynced = 1 }, tally.ByClass["b"]);
        Assert.Empty(tally.LostSyncedSample);
    }

    [Fact]
    public void Compare_SyncedConnectionMissingFromCommittedTable_CountsLostSynced()
    {
        var alive = new Dictionary<ConnectionKey, string> { [Key(1)] = "a", [Key(2)] = "a" };
        var tally = FailoverAccounting.Compare(alive, [Table(1, 2), Table(1, 2)], Table(1));

        Assert.Equal(1, tally.Total.LostSynced);
        Assert.Equal(1, tally.Total.Preserved);
        Assert.Single(tally.LostSyncedSample);
    }

    [Fact]
    public void Compare_ConnectionOnlyInTheSurvivorThatDidNotTakeOver_CountsAsSynchronizedAndLost()
    {
        // The strict reading: a connection that reached any survivor was synchronized; the new Active must have it.
        var alive = new Dictionary<ConnectionKey, string> { [Key(1)] = "a", [Key(2)] = "a" };
        var promoterCapture = Table(1);
        var otherSurvivor = Table(1, 2);
        var tally = FailoverAccounting.Compare(alive, [promoterCapture, otherSurvivor], promoterCapture);

        Assert.Equal(2, tally.Total.Synced);
        Assert.Equal(1, tally.Total.LostSynced);
    }

    [Fact]
    public void Compare_CapturedButNoLongerAlive_NotCountedAsAliveOrLost()
    {
        // Destroyed in the Active, the destroy never synchronized: the survivors still hold it (stale).
        var alive = new Dictionary<ConnectionKey, string> { [Key(1)] = "a" };
        var tally = FailoverAccounting.Compare(alive, [Table(1, 9)], Table(1, 9));

        Assert.Equal(1, tally.Total.Alive);
        Assert.Equal(0, tally.Total.LostSynced);
        Assert.Equal(1, tally.CapturedNotAlive);
    }

    [Fact]
    public void Compare_StaleVersionInCommittedTable_CountsAsPreserved()
    {
        var alive = new Dictionary<ConnectionKey, string> { [Key(1)] = "a" };
        var newer = new Dictionary<ConnectionKey, ConnectionEntry> { [Key(1)] = Entry(7) };
        var older = new Dictionary<ConnectionKey, ConnectionEntry> { [Key(1)] = Entry(3) };
        var tally = FailoverAccounting.Compare(alive, [older, newer], older);

        Assert.Equal(1, tally.Total.Preserved);
        Assert.Equal(0, tally.Total.LostSynced);
    }

    [Fact]
    public void EncodeEntries_RoundTrip_SameKeysAndVersions()
    {
        var table = Table(1, 2, 3);
        table[ConnectionKey.IPv6(0xFD00, 5, 0xFD00, 6, 40000, 22, 6)] = Entry(99);
        var decoded = RecordStream.DecodeEntries(RecordStream.EncodeEntries(table));

        Assert.Equal(table.Count, decoded.Count);
        foreach (var (k, e) in table)
        {
            Assert.Equal(e.Version, decoded[k].Version);
        }
    }

    [Fact]
    public void DecodeEntries_CorruptRecord_Throws()
    {
        var body = RecordStream.EncodeEntries(Table(1, 2));
        body[^40] = 0xFF; // the second record's op byte region: no longer a valid record
        Assert.Throws<InvalidDataException>(() => RecordStream.DecodeEntries(body.AsSpan(0, body.Length - 1)));
    }

    [Fact]
    public void EncodeFrame_DataPlaneChangesWithoutVersion_DecodeAsRecords()
    {
        var change = ConnectionEvent.Create(ConnectionEventKind.New, Key(5), ProtocolState.TcpSynSent, 60, 1000);
        var buffer = new byte[4 + 256];
        int length = RecordStream.EncodeFrame([change], buffer);
        var records = new ReadOnlySpan<byte>(buffer, 4, length - 4);
        var staging = new ConnectionEvent[2];

        Assert.Equal(1, Protocol.RecordCodec.ReadMany(ref records, staging));
        Assert.Equal(Key(5), staging[0].Key);
        Assert.True(records.IsEmpty);
    }

    [Theory]
    [InlineData(0, "no synchronized connection lost")]
    [InlineData(3, "3 synchronized connections lost")]
    public void Render_Summary_SaysWhetherSynchronizedConnectionsWereLost(int lostSynced, string verdict)
    {
        var tally = new FailoverTally
        {
            Total = new ClassTally { Alive = 10, Synced = 8, Preserved = 8 - lostSynced, LostSynced = lostSynced, LostUnsynced = 2 },
            ByClass = new Dictionary<string, ClassTally> { ["mission-critical"] = new() { Alive = 10, Synced = 8, Preserved = 8 - lostSynced, LostSynced = lostSynced, LostUnsynced = 2 } },
        };
        var result = new DemoResult
        {
            Tally = tally, FailoverMs = 312.5, DetectionMs = 290, NewActive = 2, CapturedBeforePromotion = true, PrematureTakeover = false, ExtraTakeovers = 0, SurvivorsSeen = "", Committed = 8, ChangesFed = 100,
            ChurnSeconds = 1, ChangesPerSecondAtKill = 5000, Messages = 60, MessagesSyncAll = 100, Datagrams = 5, TotalSeconds = 9,
            Static3s = new StaticDelayCount(3, 75, 4), Model = "lifetime", ModelSource = "shipped", ModelTrainedAt = "2026-11-26T02:44:31Z",
            Decisions = new Dictionary<string, long> { ["now"] = 7, ["never"] = 3 },
        };
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        console.Profile.Width = 200;

        DemoCommand.Render(result, new DemoOptions(), console);

        var text = output.ToString();
        Assert.Contains(verdict, text, StringComparison.Ordinal);
        Assert.Contains("312.5 ms", text, StringComparison.Ordinal);
        Assert.Contains("60.0 %", text, StringComparison.Ordinal);
        Assert.Contains("75 messages for the 100 changes fed: 75.0 % of sync-all", text, StringComparison.Ordinal);
        Assert.Contains("2 of 10 alive not replicated: mission-critical 2", text, StringComparison.Ordinal);
        Assert.Contains("adaptive, model lifetime (shipped, trained 2026-11-26T02:44:31Z); decisions now 7, never 3", text, StringComparison.Ordinal);
        var json = DemoCommand.ToJson(result, new DemoOptions());
        Assert.Equal(lostSynced, json["lost_synced"]);
        Assert.Equal("adaptive", json["policy"]);
        Assert.Equal("lifetime", json["model"]);
        Assert.Equal(75L, json["messages_static_3s"]);
        Assert.Equal(4, json["exposed_static_3s"]);
        Assert.Equal(2, json["exposed_at_failover"]);
    }

    [Fact]
    public void Compare_UnsyncedConnectionsMatchingALiveTemplate_CountPickedUpByTemplate()
    {
        // Keys 1-3: client 10.0.0.1/2/3 to 192.168.0.1:443. Templates: client 1's shape (live at the kill), client 2's (expired).
        var alive = new Dictionary<ConnectionKey, string> { [Key(1)] = "short", [Key(2)] = "short", [Key(3)] = "short", [Key(4)] = "full" };
        var live = new ClusterSync.Templates.ConnectionTemplate(ClusterSync.Templates.TemplateKeys.ShapeOf(Key(1)), 1, 1, 50, 60, 1_000, 10_000, 7);
        var expired = live with { Key = ClusterSync.Templates.TemplateKeys.ShapeOf(Key(2)), UpdatedMs = 1_000, LifetimeSeconds = 5 };

        var tally = FailoverAccounting.Compare(alive, [Table(4)], Table(4), [live, expired], killUnixMs: 20_000);

        Assert.Equal(new ClassTally { Alive = 3, LostUnsynced = 3, PickedUpByTemplate = 1 }, tally.ByClass["short"]);
        Assert.Equal(1, tally.Total.PickedUpByTemplate);
        Assert.Equal(0, tally.ByClass["full"].PickedUpByTemplate);
    }

    [Fact]
    public void TemplatesRoute_EncodeThenDecode_RoundTrip()
    {
        var a = new ClusterSync.Templates.ConnectionTemplate(ConnectionKey.IPv4(0x0A00_0001, 0xC0A8_0001, 0, 80, 6), 1, 2, 20, 60, 1_000, 2_000, 9);
        var b = a with { Key = ConnectionKey.IPv6(0xFD00_0000_0000_0000, 1, 0xFD00_0000_0000_0000, 2, 0, 53, 17), Version = 10 };

        var back = ClusterSync.Node.Control.FailoverRoutes.DecodeTemplates(ClusterSync.Node.Control.FailoverRoutes.EncodeTemplates([a, b]));

        Assert.Equal([a, b], back);
    }
}
