namespace ClusterSync.Core.Tests.FullSync;

/// <summary>
/// A source (member 1) holding <c>connections</c> live connections (and one tombstone, the first's destroy, when
/// asked) and an empty joiner (member 2) on one fake clock; the joiner holds <c>joinerKey</c> when given (a member of
/// another cluster). Transfers run over <see cref="MemoryDuplex"/>, no network.
/// </summary>
internal sealed class FullSyncRig : IDisposable
{
    public FullSyncRig(int connections, bool tombstone = false, ClusterKey? joinerKey = null)
    {
        JoinerKey = joinerKey ?? Key;
        (Source, _) = EngineKit.Create(1, 2, Key, Time);
        (Joiner, _) = EngineKit.Create(2, 1, JoinerKey, Time);
        var batch = new ConnectionEvent[connections];
        for (int i = 0; i < batch.Length; i++)
        {
            batch[i] = ConnectionEvent.Create(ConnectionEventKind.New, EngineKit.Tcp(443, (ushort)(1000 + i)), ProtocolState.TcpEstablished, 600, 0);
        }

        Source.Submit(batch);
        if (tombstone)
        {
            Source.Submit(ConnectionEvent.Create(ConnectionEventKind.Destroy, EngineKit.Tcp(443, 1000), ProtocolState.TcpClose, 0, 0));
        }
    }

    public FakeTimeProvider Time { get; } = new(EngineKit.Start);

    public ClusterKey Key { get; } = ClusterKey.Generate();

    public ClusterKey JoinerKey { get; }

    public SyncEngine Source { get; }

    public SyncEngine Joiner { get; }

    /// <summary>A server of the source's table whose handshake deadline runs on the fake clock (its default slots unless given).</summary>
    public FullSyncServer ServerOnFakeClock(int? maxConcurrent = null) => maxConcurrent is int slots
        ? new(Source, new NoStreams(), Key, time: Time) { MaxConcurrent = slots }
        : new(Source, new NoStreams(), Key, time: Time);

    /// <summary>
    /// Serves the source's table to the joiner, through <paramref name="server"/> (else a default server of its own),
    /// the joiner pulling with <paramref name="clientKey"/> (else its key) and <paramref name="tamper"/> seeing what it reads.
    /// </summary>
    public async Task<(FullSyncResult Client, FullSyncStatus Server)> Transfer(
        FullSyncServer? server = null, ClusterKey? clientKey = null, Action<long, Memory<byte>>? tamper = null)
    {
        var (a, b) = MemoryDuplex.CreatePair();
        b.OnRead = tamper;
        await using var own = server is null ? new FullSyncServer(Source, new NoStreams(), Key) : null;
        var serving = (server ?? own!).ServeAsync(a, CancellationToken.None);
        var result = await new FullSyncClient(Joiner, new NoStreams(), clientKey ?? JoinerKey).PullAsync(b, CancellationToken.None)
            .WaitAsync(TimeSpan.FromSeconds(20));
        b.Dispose();
        return (result, await serving.WaitAsync(TimeSpan.FromSeconds(20)));
    }

    public void Dispose()
    {
        Source.Dispose();
        Joiner.Dispose();
    }
}

/// <summary>A stream channel never used: the tests hand streams to the server and the client themselves.</summary>
internal sealed class NoStreams : IStreamChannel
{
    public ValueTask<Stream> ConnectAsync(int peerIndex, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public ValueTask<Stream> AcceptAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
}
