namespace ClusterSync.Core.Tests.FullSync;

/// <summary>
/// The source's walk encodes records straight from the table into the frame (<c>SyncEngine.EncodeSnapshotChunk</c>):
/// a frame that fills in the middle of a chunk resumes at the same slot, so every entry travels exactly once, as the
/// copy-out walk would have sent it.
/// </summary>
public sealed class SnapshotEncodeTests
{
    [Theory]
    [InlineData(4096, 1000)]  // frames of ~80 records: full long before a chunk of slots ends
    [InlineData(65536, 37)]   // chunks of 37 slots: several chunks per frame
    public void EncodeSnapshotChunk_FramesFillingMidChunk_EveryEntryOnceAsTheCopyWalkSendsIt(int frameBytes, int chunkSlots)
    {
        using var rig = new FullSyncRig(5000, tombstone: true);
        var expected = new Dictionary<ConnectionKey, ConnectionEvent>();
        var copied = new ConnectionEvent[chunkSlots];
        for (int cursor = 0; cursor >= 0;)
        {
            int n = rig.Source.CopySnapshotChunk(ref cursor, copied);
            foreach (var r in copied.AsSpan(0, n))
            {
                expected.Add(r.Key, r);
            }
        }

        var frame = new byte[frameBytes];
        var seen = new Dictionary<ConnectionKey, ConnectionEvent>();
        int frames = 0;
        for (int cursor = 0; cursor >= 0;)
        {
            int pos = 0;
            int records = 0;
            while (cursor >= 0 && pos + RecordCodec.MaxRecordSize <= frame.Length)
            {
                records += rig.Source.EncodeSnapshotChunk(ref cursor, frame, ref pos, chunkSlots);
            }

            frames++;
            var bytes = new ReadOnlySpan<byte>(frame, 0, pos);
            var decoded = new ConnectionEvent[records + 1];
            Assert.Equal(records, RecordCodec.ReadMany(ref bytes, decoded));
            Assert.Equal(0, bytes.Length);
            foreach (var r in decoded.AsSpan(0, records))
            {
                seen.Add(r.Key, r); // throws on a record sent twice
            }
        }

        Assert.True(frames > 1, $"{frames} frame(s): the test must fill frames mid-walk");
        Assert.Equal(5000, expected.Count); // 4,999 live connections and the first one's tombstone
        Assert.Equal(expected.Count, seen.Count);
        foreach (var (key, want) in expected)
        {
            var got = seen[key];
            Assert.Equal(want.Kind, got.Kind);
            Assert.Equal(want.Entry.Version, got.Entry.Version);
            Assert.True(want.Kind == ConnectionEventKind.Destroy || got.Entry.SameState(want.Entry), $"{key}: state differs");
        }
    }
}
