namespace ClusterSync.Core.Tests.FullSync;

/// <summary>
/// The client applies Records frames in batches of 1,024 decoded records: a frame of several batches arrives whole, and
/// an authentic frame that does not parse applies exactly the records before the bad one and fails the transfer as
/// Malformed (a bad extension block counted apart).
/// </summary>
public sealed class FullSyncPipelineTests
{
    [Fact]
    public async Task Pull_RecordsFramesOfManyChunks_EveryRecordApplied()
    {
        using var rig = new FullSyncRig(5000, tombstone: true); // one Records frame of 5,000 records: 5 apply batches
        var (result, served) = await rig.Transfer();
        Assert.Equal(FullSyncStatus.Completed, result.Status);
        Assert.Equal(FullSyncStatus.Completed, served);
        Assert.Equal(5000, result.Entries);
        Assert.Equal(4999, rig.Joiner.SnapshotTable().Count);
        foreach (var (k, e) in rig.Source.SnapshotTable())
        {
            Assert.True(rig.Joiner.TryGetEntry(k, out var other) && other.SameState(e));
        }
    }

    [Theory]
    [InlineData(10, false)]    // within the first batch
    [InlineData(1500, false)]  // in the second batch: the first was applied whole
    [InlineData(1500, true)]   // the same, the bad record refused for its extension block (counted apart)
    public async Task Pull_AuthenticRecordsFrameThatDoesNotParse_AppliesRecordsBeforeTheBadOneThenMalformed(int good, bool badExtension)
    {
        using var rig = new FullSyncRig(0);
        var (server, client) = MemoryDuplex.CreatePair();
        var serving = ServeForgedAsync(server, rig, good, badExtension);
        var puller = new FullSyncClient(rig.Joiner, new NoStreams(), rig.Key);
        var result = await puller.PullAsync(client, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));
        client.Dispose();
        await serving.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(FullSyncStatus.Malformed, result.Status);
        Assert.Equal(good, result.Entries);
        Assert.Equal(good, result.Applied);
        Assert.Equal(good, rig.Joiner.TableCount);
        Assert.True(rig.Joiner.TryGetEntry(Key(good - 1), out _));
        Assert.False(rig.Joiner.TryGetEntry(Key(good + 1), out _));
        Assert.Equal(badExtension ? 1 : 0, puller.Counters.RecordsBadExtension);
    }

    private static ConnectionKey Key(int i) => EngineKit.Tcp(443, (ushort)(2000 + i), 0x0A00_0100);

    /// <summary>
    /// Plays a source holding the cluster key that sends, after Begin, one authentic Records frame announcing
    /// <paramref name="good"/> + 10 records: <paramref name="good"/> valid ones, then one that does not parse (an unknown
    /// op, or an extension block of an unknown version), then valid ones again.
    /// </summary>
    private static async Task ServeForgedAsync(MemoryDuplex stream, FullSyncRig rig, int good, bool badExtension)
    {
        var hs = await FullSyncHandshake.ServerAsync(stream, rig.Key, 1, _ => HelloStatus.Accepted, CancellationToken.None);
        Assert.True(hs.Ok);
        var frame = new byte[FrameProtection.MaxPlaintext + FrameProtection.Overhead];
        int p = FrameProtection.LengthSize;
        frame[p++] = 1; // Begin
        frame[p++] = 1;
        BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(p), rig.Source.Epoch);
        BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(p + 8), 0);
        BinaryPrimitives.WriteInt64BigEndian(frame.AsSpan(p + 16), good + 10);
        p += 24;
        int n = hs.Send!.Seal(frame, p - FrameProtection.LengthSize);
        await stream.WriteAsync(frame.AsMemory(0, n));

        p = FrameProtection.LengthSize;
        frame[p++] = 2; // Records
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(p), good + 10);
        p += 4;
        for (int i = 0; i < good + 10; i++)
        {
            var r = ConnectionEvent.Create(ConnectionEventKind.Update, Key(i), ProtocolState.TcpEstablished, 600, 1_000);
            r.Entry.Owner = 1;
            r.Entry.Version = 1000UL + (ulong)i;
            if (i == good && badExtension)
            {
                r.Entry.Mark = 7; // written with an extension block; its version byte is spoiled below
            }

            int at = p;
            p += RecordCodec.Write(frame.AsSpan(p), r);
            if (i == good)
            {
                if (badExtension)
                {
                    frame[p - 6] = 9; // the block: length, version (here), fields, mark(4): version 9 is unknown
                }
                else
                {
                    frame[at] = 9; // op 9: no such operation
                }
            }
        }

        n = hs.Send.Seal(frame, p - FrameProtection.LengthSize);
        await stream.WriteAsync(frame.AsMemory(0, n));
        hs.DisposeKeys();
    }
}
