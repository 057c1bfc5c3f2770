namespace ClusterSync.Core.Tests.Engine;

/// <summary>The receiving member: what <c>HandleDatagram</c> accepts, applies and rejects.</summary>
public sealed class SyncEngineApplyTests : IDisposable
{
    private readonly EnginePair _pair = new();
    private readonly EngineSet _others = new();

    public void Dispose()
    {
        _others.Dispose();
        _pair.Dispose();
    }

    /// <summary>An engine besides the pair, disposed with it; started when it is to send.</summary>
    private (SyncEngine Engine, CaptureChannel Channel) Other(byte member, byte peer, ClusterKey? key, TimeProvider time, bool insecure = false, bool start = false)
    {
        var created = EngineKit.Create(member, peer, key, time, insecure);
        _others.Add(created.Engine);
        if (start)
        {
            created.Engine.Start();
        }

        return created;
    }

    [Fact]
    public void HandleDatagram_ValidData_AppliesEveryRecord()
    {
        var keys = new[] { EngineKit.Tcp(443, 1001), EngineKit.Tcp(443, 1002), EngineKit.Tcp(22, 1003) };
        var applied = new List<ConnectionEvent>();
        _pair.Receiver.AppliedObserver = (in ConnectionEvent r) => applied.Add(r);
        _pair.Sender.Submit(keys.Select(k => EngineKit.New(k)).ToArray());
        var datagram = Assert.Single(_pair.SenderChannel.WaitForData(1));

        var result = _pair.Feed(datagram);

        Assert.Equal(DropReason.None, result);
        Assert.Equal(3, _pair.Receiver.SnapshotTable().Count);
        foreach (var key in keys)
        {
            Assert.True(_pair.Sender.TryGetEntry(key, out var original));
            Assert.True(_pair.Receiver.TryGetEntry(key, out var replica));
            Assert.True(original.SameState(replica), $"{key} differs on the replica");
            Assert.Equal(1, replica.Owner);
            Assert.Equal((ConnectionStatus)0, replica.Status & (ConnectionStatus.Announced | ConnectionStatus.Tombstone));
        }

        Assert.Equal(3, _pair.Receiver.Counters.UpdatesApplied);
        Assert.Equal(keys, applied.Select(a => a.Key));
    }

    [Fact]
    public void HandleDatagram_SameDatagramTwice_SecondIsReplayAndChangesNothing()
    {
        var key = EngineKit.Tcp(443, 2001);
        var datagram = _pair.SubmitAndCapture(EngineKit.New(key));
        Assert.Equal(DropReason.None, _pair.Feed(datagram));
        var before = _pair.Receiver.SnapshotTable(includeTombstones: true);

        var result = _pair.Feed(datagram);

        Assert.Equal(DropReason.Replay, result);
        Assert.Equal(1, _pair.Receiver.Counters.UpdatesApplied);
        Assert.Equal(0, _pair.Receiver.Counters.UpdatesStale);
        Assert.Equal(before, _pair.Receiver.SnapshotTable(includeTombstones: true));
    }

    [Fact]
    public void HandleDatagram_ReplayAfterLaterChange_DoesNotRollBack()
    {
        var key = EngineKit.Tcp(443, 2002);
        var d1 = _pair.SubmitAndCapture(EngineKit.New(key));
        var d2 = _pair.SubmitAndCapture(EngineKit.Update(key, ProtocolState.TcpEstablished));
        Assert.Equal(DropReason.None, _pair.Feed(d1));
        Assert.Equal(DropReason.None, _pair.Feed(d2));

        Assert.Equal(DropReason.Replay, _pair.Feed(d1));

        Assert.True(_pair.Receiver.TryGetEntry(key, out var e));
        Assert.Equal(ProtocolState.TcpEstablished, e.State);
    }

    [Fact]
    public void HandleDatagram_OneFlippedBodyByte_AuthenticationFailedAndNothingApplied()
    {
        var datagram = _pair.SubmitAndCapture(EngineKit.New(EngineKit.Tcp(443, 3001)));

        for (int i = PacketHeader.Size; i < datagram.Length; i++)
        {
            var copy = (byte[])datagram.Clone();
            copy[i] ^= 0x01;
            Assert.Equal(DropReason.AuthenticationFailed, _pair.Feed(copy));
        }

        Assert.Empty(_pair.Receiver.SnapshotTable(includeTombstones: true));
        Assert.Equal(0, _pair.Receiver.Counters.UpdatesApplied);

        // The forgeries did not burn the sequence: the genuine datagram still applies.
        Assert.Equal(DropReason.None, _pair.Feed(datagram));
        Assert.Single(_pair.Receiver.SnapshotTable());
    }

    [Fact]
    public void HandleDatagram_OneFlippedHeaderByte_RejectedAndNothingApplied()
    {
        var datagram = _pair.SubmitAndCapture(EngineKit.New(EngineKit.Tcp(443, 3002)));

        for (int i = 0; i < PacketHeader.Size; i++)
        {
            foreach (byte mask in new byte[] { 0x01, 0x80 })
            {
                var copy = (byte[])datagram.Clone();
                copy[i] ^= mask;
                Assert.True(_pair.Feed(copy) != DropReason.None, $"byte {i} ^ {mask:X2} accepted");
            }
        }

        Assert.Empty(_pair.Receiver.SnapshotTable(includeTombstones: true));
        Assert.Equal(DropReason.None, _pair.Feed(datagram));
    }

    [Fact]
    public void HandleDatagram_Truncated_TruncatedOrAuthenticationFailed()
    {
        var datagram = _pair.SubmitAndCapture(EngineKit.New(EngineKit.Tcp(443, 4001)));

        for (int length = 0; length < datagram.Length; length++)
        {
            var result = _pair.Receiver.HandleDatagram(datagram.AsSpan(0, length).ToArray());
            var expected = length == 0 ? DropReason.Empty : length < PacketHeader.Size ? DropReason.Truncated : DropReason.AuthenticationFailed;
            Assert.True(expected == result, $"length {length}: expected {expected}, got {result}");
        }

        Assert.Empty(_pair.Receiver.SnapshotTable(includeTombstones: true));
    }

    [Fact]
    public void HandleDatagram_SealedWithAnotherClusterKey_AuthenticationFailedAndNothingApplied()
    {
        var (stranger, strangerChannel) = Other(1, 2, ClusterKey.Generate(), _pair.Time, start: true);
        var forged = EngineKit.SubmitAndCapture(stranger, strangerChannel, EngineKit.New(EngineKit.Tcp(443, 5001)));

        var result = _pair.Feed(forged);

        Assert.Equal(DropReason.AuthenticationFailed, result);
        Assert.Empty(_pair.Receiver.SnapshotTable(includeTombstones: true));
        Assert.Equal(0, _pair.Receiver.Counters.UpdatesApplied);

        // The genuine member (same id, same epoch) is still accepted afterwards.
        var genuine = _pair.SubmitAndCapture(EngineKit.New(EngineKit.Tcp(443, 5002)));
        Assert.Equal(DropReason.None, _pair.Feed(genuine));
        Assert.Single(_pair.Receiver.SnapshotTable());
    }

    [Fact]
    public void HandleDatagram_OlderVersionAfterNewer_CountedStaleAndNotOverwritten()
    {
        var key = EngineKit.Tcp(443, 6001);
        var older = _pair.SubmitAndCapture(EngineKit.New(key, state: ProtocolState.TcpSynSent));
        var newer = _pair.SubmitAndCapture(EngineKit.Update(key, ProtocolState.TcpEstablished));
        Assert.True(_pair.Sender.TryGetEntry(key, out var latest));

        Assert.Equal(DropReason.None, _pair.Feed(newer));
        Assert.Equal(DropReason.None, _pair.Feed(older));

        Assert.Equal(1, _pair.Receiver.Counters.UpdatesStale);
        Assert.Equal(1, _pair.Receiver.Counters.UpdatesApplied);
        Assert.True(_pair.Receiver.TryGetEntry(key, out var replica));
        Assert.Equal(ProtocolState.TcpEstablished, replica.State);
        Assert.True(latest.SameState(replica));
    }

    [Fact]
    public void HandleDatagram_DestroyThenReorderedOlderUpdate_TombstoneBlocksIt()
    {
        var key = EngineKit.Tcp(443, 7001);
        var created = _pair.SubmitAndCapture(EngineKit.New(key));
        var updated = _pair.SubmitAndCapture(EngineKit.Update(key, ProtocolState.TcpEstablished));
        var destroyed = _pair.SubmitAndCapture(EngineKit.Destroy(key));
        Assert.Equal(ConnectionEventKind.Destroy, Assert.Single(EngineKit.Decode(destroyed, _pair.Key, 1, _pair.Sender.Epoch)).Kind);

        Assert.Equal(DropReason.None, _pair.Feed(created));
        Assert.Equal(DropReason.None, _pair.Feed(destroyed));
        Assert.DoesNotContain(_pair.Receiver.SnapshotTable(), kv => kv.Key == key);
        var tombstone = Assert.Single(_pair.Receiver.SnapshotTable(includeTombstones: true), kv => kv.Key == key).Value;
        Assert.True((tombstone.Status & ConnectionStatus.Tombstone) != 0);

        Assert.Equal(DropReason.None, _pair.Feed(updated));

        Assert.Equal(1, _pair.Receiver.Counters.UpdatesStale);
        Assert.DoesNotContain(_pair.Receiver.SnapshotTable(), kv => kv.Key == key);
        Assert.True(_pair.Receiver.TryGetEntry(key, out var after));
        Assert.True((after.Status & ConnectionStatus.Tombstone) != 0);
        Assert.Equal(tombstone.Version, after.Version);
    }

    [Fact]
    public void HandleDatagram_DestroyBeforeItsNew_TombstoneBlocksTheNew()
    {
        var key = EngineKit.Tcp(443, 7002);
        var created = _pair.SubmitAndCapture(EngineKit.New(key));
        var destroyed = _pair.SubmitAndCapture(EngineKit.Destroy(key));

        Assert.Equal(DropReason.None, _pair.Feed(destroyed));
        Assert.Equal(DropReason.None, _pair.Feed(created));

        Assert.Empty(_pair.Receiver.SnapshotTable());
        Assert.Equal(1, _pair.Receiver.Counters.UpdatesStale);
    }

    [Fact]
    public void HandleDatagram_InsecureDatagramToSecureEngine_InsecureMismatch()
    {
        var (engine, insecureChannel) = Other(1, 2, null, _pair.Time, insecure: true, start: true);

        var datagram = EngineKit.SubmitAndCapture(engine, insecureChannel, EngineKit.New(EngineKit.Tcp(443, 8001)));

        Assert.Equal(DropReason.InsecureMismatch, _pair.Feed(datagram));
        Assert.Empty(_pair.Receiver.SnapshotTable(includeTombstones: true));
    }

    [Fact]
    public void HandleDatagram_SecureDatagramToInsecureEngine_InsecureMismatch()
    {
        var (insecureReceiver, _) = Other(2, 1, null, _pair.Time, insecure: true);
        var datagram = _pair.SubmitAndCapture(EngineKit.New(EngineKit.Tcp(443, 8002)));

        Assert.Equal(DropReason.InsecureMismatch, insecureReceiver.HandleDatagram((byte[])datagram.Clone()));
        Assert.Empty(insecureReceiver.SnapshotTable(includeTombstones: true));
    }

    [Fact]
    public void HandleDatagram_InsecureToInsecure_Applies()
    {
        var (sender, senderChannel) = Other(1, 2, null, _pair.Time, insecure: true, start: true);
        var (receiver, _) = Other(2, 1, null, _pair.Time, insecure: true);
        var key = EngineKit.Tcp(443, 8003);

        var datagram = EngineKit.SubmitAndCapture(sender, senderChannel, EngineKit.New(key));

        Assert.Equal(0, datagram[7] & 1); // not sealed
        Assert.Equal(DropReason.None, receiver.HandleDatagram((byte[])datagram.Clone()));
        Assert.True(receiver.TryGetEntry(key, out _));
    }

    [Fact]
    public void HandleDatagram_FromUnconfiguredMember_UnknownSender()
    {
        // Member 3 knows only member 2, not member 1.
        var (third, _) = Other(3, 2, _pair.Key, _pair.Time);
        var datagram = _pair.SubmitAndCapture(EngineKit.New(EngineKit.Tcp(443, 9001)));

        Assert.Equal(DropReason.UnknownSender, third.HandleDatagram((byte[])datagram.Clone()));
    }

    [Fact]
    public void HandleDatagram_OwnDatagramLoopedBack_UnknownSender()
    {
        var datagram = _pair.SubmitAndCapture(EngineKit.New(EngineKit.Tcp(443, 9002)));

        Assert.Equal(DropReason.UnknownSender, _pair.Sender.HandleDatagram((byte[])datagram.Clone()));
    }

    [Fact]
    public void HandleDatagram_PeerRestartsThenOldEpochArrives_StaleEpoch()
    {
        var oldKey = EngineKit.Tcp(443, 9101);
        var oldLife = _pair.SubmitAndCapture(EngineKit.New(oldKey));
        var late = _pair.SubmitAndCapture(EngineKit.Update(oldKey, ProtocolState.TcpEstablished));

        _pair.Time.Advance(TimeSpan.FromSeconds(1));
        var (restarted, restartedChannel) = Other(1, 2, _pair.Key, _pair.Time, start: true);
        Assert.True(restarted.Epoch > _pair.Sender.Epoch);
        var newKey = EngineKit.Tcp(443, 9102);
        var newLife = EngineKit.SubmitAndCapture(restarted, restartedChannel, EngineKit.New(newKey));

        Assert.Equal(DropReason.None, _pair.Feed(oldLife));
        Assert.Equal(DropReason.None, _pair.Feed(newLife));
        Assert.Equal(1, _pair.Receiver.Counters.PeerRestarts);

        Assert.Equal(DropReason.StaleEpoch, _pair.Feed(late));
        Assert.True(_pair.Receiver.TryGetEntry(oldKey, out var e));
        Assert.Equal(ProtocolState.TcpSynSent, e.State);
        Assert.True(_pair.Receiver.TryGetEntry(newKey, out _));
    }

    [Fact]
    public void Submit_UpdateUnderAClockBehindTheCreator_UpdatedNeverBeforeCreatedAndRecordReads()
    {
        // Simulator seed 53: created on an Active whose clock ran 33 s ahead, updated on the next Active.
        var ahead = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(EngineKit.Start + TimeSpan.FromSeconds(33));
        var (creator, creatorChannel) = Other(1, 2, _pair.Key, ahead, start: true);
        var key = EngineKit.Tcp(443, 5301);
        Assert.Equal(DropReason.None, _pair.Feed(EngineKit.SubmitAndCapture(creator, creatorChannel, EngineKit.New(key))));

        _pair.Receiver.Submit(EngineKit.Update(key, ProtocolState.TcpEstablished));

        Assert.True(_pair.Receiver.TryGetEntry(key, out var e));
        Assert.True(e.UpdatedMs >= e.CreatedMs, $"updated {e.UpdatedMs} < created {e.CreatedMs}");
        var record = new byte[RecordCodec.MaxRecordSize];
        int n = RecordCodec.Write(record, new ConnectionEvent { Kind = ConnectionEventKind.Update, Key = key, Entry = e });
        Assert.Equal(n, RecordCodec.TryRead(record.AsSpan(0, n), out _));
    }
}
