namespace ClusterSync.Core.Tests.FullSync;

public sealed class FullSyncStreamTests
{
    private static byte[] Key() => RandomNumberGenerator.GetBytes(32);

    private static byte[] Frame(FrameProtection sealer, byte[] plaintext)
    {
        var buffer = new byte[plaintext.Length + FrameProtection.Overhead];
        plaintext.CopyTo(buffer, FrameProtection.LengthSize);
        int n = sealer.Seal(buffer, plaintext.Length);
        Assert.Equal(buffer.Length, n);
        return buffer;
    }

    [Fact]
    public void Frames_RoundTrip_InOrder()
    {
        var key = Key();
        using var sealer = new FrameProtection(key, FullSyncHandshake.ServerToClient);
        using var opener = new FrameProtection(key, FullSyncHandshake.ServerToClient);
        for (int i = 1; i < 5; i++)
        {
            var plain = RandomNumberGenerator.GetBytes(i * 1000);
            var frame = Frame(sealer, plain);
            Assert.Equal(plain.Length + FrameProtection.TagSize, FrameProtection.ReadSealedLength(frame));
            Assert.False(frame.AsSpan(FrameProtection.LengthSize, plain.Length).SequenceEqual(plain)); // encrypted on the wire
            Assert.Equal(plain.Length, opener.Open(frame));
            Assert.True(frame.AsSpan(FrameProtection.LengthSize, plain.Length).SequenceEqual(plain));
        }
    }

    [Theory]
    [InlineData(0)]   // length prefix (associated data)
    [InlineData(10)]  // ciphertext
    [InlineData(-1)]  // tag
    public void Frame_Tampered_IsRejected(int offset)
    {
        var key = Key();
        using var sealer = new FrameProtection(key, 1);
        using var opener = new FrameProtection(key, 1);
        var frame = Frame(sealer, RandomNumberGenerator.GetBytes(100));
        frame[offset < 0 ? frame.Length + offset : offset] ^= 0x01;
        Assert.Equal(-1, opener.Open(frame));
    }

    [Fact]
    public void Frame_TruncatedReorderedOrOtherDirection_IsRejected()
    {
        var key = Key();
        using var sealer = new FrameProtection(key, 1);
        var first = Frame(sealer, RandomNumberGenerator.GetBytes(100));
        var second = Frame(sealer, RandomNumberGenerator.GetBytes(100));
        using (var opener = new FrameProtection(key, 1))
        {
            Assert.Equal(-1, opener.Open(first.AsSpan(0, first.Length - 1)));
        }

        using (var opener = new FrameProtection(key, 1))
        {
            Assert.Equal(-1, opener.Open(second)); // counter 0 expected: a skipped or reordered frame fails
        }

        using (var opener = new FrameProtection(key, 2))
        {
            Assert.Equal(-1, opener.Open(first)); // a frame reflected from the other direction fails
        }

        Assert.Equal(-1, FrameProtection.ReadSealedLength([0xFF, 0xFF, 0xFF, 0xFF]));
        Assert.Equal(-1, FrameProtection.ReadSealedLength([0, 0, 0, 3]));
    }

    /// <summary>Member 1 serves (answering every hello with <paramref name="answer"/>), <paramref name="clientMember"/> connects; both results.</summary>
    private static async Task<(HandshakeResult Client, HandshakeResult Server)> Handshake(
        ClusterKey serverKey, ClusterKey clientKey, HelloStatus answer, byte clientMember)
    {
        var (a, b) = MemoryDuplex.CreatePair();
        var server = FullSyncHandshake.ServerAsync(a, serverKey, 1, _ => answer, CancellationToken.None);
        var client = await FullSyncHandshake.ClientAsync(b, clientKey, clientMember, CancellationToken.None);
        return (client, await server);
    }

    [Fact]
    public async Task Handshake_SameKey_AgreesOnDirectionalKeys()
    {
        var key = ClusterKey.Generate();
        var (client, s) = await Handshake(key, key, HelloStatus.Accepted, clientMember: 2);
        Assert.True(client.Ok && s.Ok);
        Assert.Equal(1, client.PeerMember);
        Assert.Equal(2, s.PeerMember);
        var frame = Frame(s.Send!, [1, 2, 3]);
        Assert.Equal(3, client.Receive!.Open(frame));
        var back = Frame(client.Send!, [4, 5]);
        Assert.Equal(2, s.Receive!.Open(back));
        client.DisposeKeys();
        s.DisposeKeys();
    }

    [Fact]
    public async Task Handshake_WrongKey_RefusedOnBothSides()
    {
        var (client, s) = await Handshake(ClusterKey.Generate(), ClusterKey.Generate(), HelloStatus.Accepted, clientMember: 2);
        Assert.Equal(FullSyncStatus.WrongKey, client.Status);
        Assert.Equal(FullSyncStatus.WrongKey, s.Status);
        Assert.Null(client.Receive);
        Assert.Null(s.Send);
    }

    [Fact]
    public async Task Handshake_UnknownMember_Refused()
    {
        var key = ClusterKey.Generate();
        var (client, server) = await Handshake(key, key, HelloStatus.UnknownMember, clientMember: 9);
        Assert.Equal(FullSyncStatus.Refused, client.Status);
        Assert.Equal(FullSyncStatus.Refused, server.Status);
    }

    /// <summary>Flips <paramref name="mask"/> in the byte at stream offset <paramref name="offset"/> as the joiner reads it.</summary>
    private static Action<long, Memory<byte>> FlipAt(long offset, byte mask = 0x80) => (at, bytes) =>
    {
        if (offset >= at && offset < at + bytes.Length)
        {
            bytes.Span[(int)(offset - at)] ^= mask;
        }
    };

    [Fact]
    public async Task Pull_AppliesSnapshotAndTombstones()
    {
        using var rig = new FullSyncRig(300, tombstone: true);
        var (result, served) = await rig.Transfer();
        Assert.Equal(FullSyncStatus.Completed, result.Status);
        Assert.Equal(FullSyncStatus.Completed, served);
        Assert.Equal(300, result.Entries); // 299 live + 1 tombstone
        Assert.Equal(299, rig.Joiner.SnapshotTable().Count);
        foreach (var (k, e) in rig.Source.SnapshotTable())
        {
            Assert.True(rig.Joiner.TryGetEntry(k, out var other) && other.SameState(e));
        }

        Assert.True(rig.Joiner.TryGetEntry(EngineKit.Tcp(443, 1000), out var tomb) && (tomb.Status & ConnectionStatus.Tombstone) != 0);
    }

    /// <summary>Entries of the source (owner 1) the joiner holds from before (a lost destroy, an expired tombstone): ghosts.</summary>
    private static ConnectionEvent[] Ghosts(int count, ushort firstPort)
    {
        var ghosts = new ConnectionEvent[count];
        for (int i = 0; i < count; i++)
        {
            ghosts[i] = ConnectionEvent.Create(ConnectionEventKind.Update, EngineKit.Tcp(443, (ushort)(firstPort + i), 0x0A00_0009), ProtocolState.TcpEstablished, 600, 0);
            ghosts[i].Entry.Owner = 1;
            ghosts[i].Entry.Version = 1000UL + (ulong)i;
        }

        return ghosts;
    }

    [Fact]
    public async Task Pull_JoinerHoldsGhostsAbsentFromSnapshot_TableEqualsSnapshotAndOwnConnectionsStay()
    {
        using var rig = new FullSyncRig(300, tombstone: true);
        rig.Joiner.ApplySnapshot(Ghosts(25, 7000));
        rig.Joiner.Submit(EngineKit.New(EngineKit.Tcp(443, 9000, 0x0A00_0002))); // the joiner's own connection
        var (result, _) = await rig.Transfer();

        Assert.Equal(FullSyncStatus.Completed, result.Status);
        Assert.Equal(25, result.Removed);
        Assert.Equal(25, rig.Joiner.Counters.ReplaceRemoved);
        var live = rig.Joiner.SnapshotTable().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(300, live.Count); // the source's 299 live connections and the joiner's own one
        foreach (var (k, e) in rig.Source.SnapshotTable())
        {
            Assert.True(live.TryGetValue(k, out var other) && other.SameState(e));
        }

        Assert.True(live.ContainsKey(EngineKit.Tcp(443, 9000, 0x0A00_0002)));
        Assert.True(rig.Joiner.TryGetEntry(EngineKit.Tcp(443, 7000, 0x0A00_0009), out var ghost) && (ghost.Status & ConnectionStatus.Tombstone) != 0);
    }

    [Fact]
    public async Task Pull_FailsAfterBegin_RemovesNothing()
    {
        using var rig = new FullSyncRig(300, tombstone: true);
        rig.Joiner.ApplySnapshot(Ghosts(5, 7100));
        var (result, _) = await rig.Transfer(tamper: FlipAt(FullSyncHandshake.ServerHelloSize + 86, 0x01));

        Assert.Equal(FullSyncStatus.AuthenticationFailed, result.Status);
        Assert.Equal(0, rig.Joiner.Counters.ReplaceRemoved);
        Assert.True(rig.Joiner.TryGetEntry(EngineKit.Tcp(443, 7100, 0x0A00_0009), out var kept) && (kept.Status & ConnectionStatus.Tombstone) == 0);
    }

    [Fact]
    public void EndReplace_EntryNamedBySnapshotOrChangedByDeltaMeanwhile_KeptOthersRemoved()
    {
        using var pair = new EnginePair();
        var ghosts = Ghosts(3, 7200);
        pair.Receiver.ApplySnapshot(ghosts);
        long token = pair.Receiver.BeginReplace();
        Assert.NotEqual(0, token);
        Assert.Equal(0, pair.Receiver.BeginReplace()); // one replace at a time

        pair.Receiver.ApplySnapshot(ghosts.AsSpan(0, 1)); // the snapshot names the first (same version: stale, still named)
        var delta = pair.SubmitAndCapture(EngineKit.New(ghosts[1].Key)); // a newer change to the second arrives by delta
        Assert.Equal(ClusterSync.Protocol.DropReason.None, pair.Feed(delta));
        var fresh = pair.SubmitAndCapture(EngineKit.New(EngineKit.Tcp(443, 7300)));
        Assert.Equal(ClusterSync.Protocol.DropReason.None, pair.Feed(fresh)); // a connection new since the cut

        Assert.Equal(0, pair.Receiver.EndReplace(token + 1, commit: true, 1)); // not the running replace: nothing
        Assert.Equal(1, pair.Receiver.EndReplace(token, commit: true, 1));

        var live = pair.Receiver.SnapshotTable().Select(kv => kv.Key).ToHashSet();
        Assert.Equal([ghosts[0].Key, ghosts[1].Key, EngineKit.Tcp(443, 7300)], live.OrderBy(k => k.SourcePort).ToArray());
        Assert.Equal(0, pair.Receiver.EndReplace(token, commit: true, 1)); // nothing running any more
    }

    [Fact]
    public async Task Pull_WrongKey_NothingApplied()
    {
        using var rig = new FullSyncRig(300, tombstone: true, joinerKey: ClusterKey.Generate());
        var (result, served) = await rig.Transfer();
        Assert.Equal(FullSyncStatus.WrongKey, result.Status);
        Assert.Equal(FullSyncStatus.WrongKey, served);
        Assert.Equal(0, rig.Joiner.TableCount);
    }

    [Theory]
    [InlineData(FullSyncHandshake.ServerHelloSize + 10)]          // inside the Begin frame
    [InlineData(FullSyncHandshake.ServerHelloSize + 46 + 40)]     // inside the first Records frame
    public async Task Pull_TamperedFrame_AbortsAndAppliesNothing(long offset)
    {
        using var rig = new FullSyncRig(300, tombstone: true);
        var (result, _) = await rig.Transfer(tamper: FlipAt(offset));
        Assert.Equal(FullSyncStatus.AuthenticationFailed, result.Status);
        Assert.Equal(0, rig.Joiner.TableCount);
        Assert.Equal(0, result.Applied);
    }

    [Theory]
    [InlineData(FullSyncHandshake.ServerHelloSize + 10, false)]       // Begin fails: nothing was covered
    [InlineData(FullSyncHandshake.ServerHelloSize + 46 + 40, true)]   // a Records frame fails after Begin covered the stream
    public async Task Pull_FailingAfterBegin_RaisesResyncNeededAgain(long offset, bool raised)
    {
        using var rig = new FullSyncRig(300, tombstone: true);
        var events = new List<(byte Peer, ulong Lost)>();
        rig.Joiner.ResyncNeeded += (peer, lost) => events.Add((peer, lost));
        var (result, _) = await rig.Transfer(tamper: FlipAt(offset));
        Assert.Equal(FullSyncStatus.AuthenticationFailed, result.Status);
        Assert.Equal(raised ? 1 : 0, rig.Joiner.Counters.ResyncNeeded);
        Assert.Equal(raised ? [((byte)1, 0UL)] : [], events);
    }

    [Fact]
    public async Task Pull_Completed_DoesNotRaiseResyncNeeded()
    {
        using var rig = new FullSyncRig(300, tombstone: true);
        int raised = 0;
        rig.Joiner.ResyncNeeded += (_, _) => raised++;
        var (result, _) = await rig.Transfer();
        Assert.Equal(FullSyncStatus.Completed, result.Status);
        Assert.Equal(0, raised);
        Assert.Equal(0, rig.Joiner.Counters.ResyncNeeded);
    }

    [Fact]
    public async Task Pull_TruncatedStream_Fails()
    {
        using var rig = new FullSyncRig(300, tombstone: true);
        var (a, b) = MemoryDuplex.CreatePair();
        var client = new FullSyncClient(rig.Joiner, new NoStreams(), rig.Key);
        var pulling = client.PullAsync(b, CancellationToken.None);
        var hs = await FullSyncHandshake.ServerAsync(a, rig.Key, 1, _ => HelloStatus.Accepted, CancellationToken.None);
        Assert.True(hs.Ok);
        a.Dispose(); // no Begin, no End
        var result = await pulling;
        Assert.Equal(FullSyncStatus.Truncated, result.Status);
        Assert.Equal(1, client.Counters.ReceiveFailed);
        hs.DisposeKeys();
    }
}
