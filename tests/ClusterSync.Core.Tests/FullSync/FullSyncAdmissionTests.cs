using System.Security.Cryptography;
using ClusterSync.Connections;
using ClusterSync.Core.Tests.Engine;
using ClusterSync.Engine;
using ClusterSync.FullSync;
using ClusterSync.Security;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSync.Core.Tests.FullSync;

/// <summary>Transfer slots go to clients that proved the key; unauthenticated connections are cut early and counted (issue 14, bug 2).</summary>
public sealed class FullSyncAdmissionTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(EngineKit.Start);
    private readonly ClusterKey _key = ClusterKey.Generate();
    private readonly SyncEngine _source;
    private readonly SyncEngine _joiner;

    public FullSyncAdmissionTests()
    {
        (_source, _) = EngineKit.Create(1, 2, _key, _time);
        (_joiner, _) = EngineKit.Create(2, 1, _key, _time);
        var batch = new ConnectionEvent[50];
        for (int i = 0; i < batch.Length; i++)
        {
            batch[i] = ConnectionEvent.Create(ConnectionEventKind.New, EngineKit.Tcp(443, (ushort)(1000 + i)), ProtocolState.TcpEstablished, 600, 0);
        }

        _source.Submit(batch);
    }

    public void Dispose()
    {
        _source.Dispose();
        _joiner.Dispose();
    }

    private static byte[] ClientHello(byte member)
    {
        var hello = new byte[FullSyncHandshake.ClientHelloSize];
        "CSFS"u8.CopyTo(hello);
        hello[4] = FullSyncHandshake.Version;
        hello[5] = 1;
        hello[6] = member;
        RandomNumberGenerator.Fill(hello.AsSpan(8));
        return hello;
    }

    [Fact]
    public async Task ServeAsync_HelloWithoutProofHoldsConnection_JoinerStillGetsTheOnlySlotAndIdlerIsCutAtDeadline()
    {
        await using var server = new FullSyncServer(_source, new NoStreams(), _key, time: _time) { MaxConcurrent = 1 };

        // An attacker without the key: a valid ClientHello naming a member, then silence.
        var (attackerServerSide, attacker) = MemoryDuplex.CreatePair();
        await attacker.WriteAsync(ClientHello(2));
        var idle = server.ServeAsync(attackerServerSide, CancellationToken.None);

        var (joinerServerSide, joinerSide) = MemoryDuplex.CreatePair();
        var serving = server.ServeAsync(joinerServerSide, CancellationToken.None);
        var result = await new FullSyncClient(_joiner, new NoStreams(), _key).PullAsync(joinerSide, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));
        joinerSide.Dispose();

        Assert.Equal(FullSyncStatus.Completed, result.Status);
        Assert.Equal(FullSyncStatus.Completed, await serving.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.False(idle.IsCompleted);

        _time.Advance(server.HandshakeTimeout);
        Assert.Equal(FullSyncStatus.TimedOut, await idle.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(1, server.Counters.UnauthenticatedCut);
        attacker.Dispose();
    }

    [Fact]
    public async Task ServeAsync_AuthenticatedButEverySlotTaken_ClientRefusedByErrorFrameAndRetries()
    {
        await using var server = new FullSyncServer(_source, new NoStreams(), _key, time: _time) { MaxConcurrent = 0 };
        var (a, b) = MemoryDuplex.CreatePair();
        var serving = server.ServeAsync(a, CancellationToken.None);
        var result = await new FullSyncClient(_joiner, new NoStreams(), _key).PullAsync(b, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));
        b.Dispose();

        Assert.Equal(FullSyncStatus.Refused, result.Status);
        Assert.Equal(FullSyncStatus.Refused, await serving.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(0, server.Counters.UnauthenticatedCut);
        Assert.Equal(0, _joiner.TableCount);
    }

    [Fact]
    public async Task ServeAsync_WrongKey_CutAndCounted()
    {
        await using var server = new FullSyncServer(_source, new NoStreams(), _key, time: _time);
        var (a, b) = MemoryDuplex.CreatePair();
        var serving = server.ServeAsync(a, CancellationToken.None);
        var result = await new FullSyncClient(_joiner, new NoStreams(), ClusterKey.Generate()).PullAsync(b, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));
        b.Dispose();

        Assert.Equal(FullSyncStatus.WrongKey, result.Status);
        Assert.Equal(FullSyncStatus.WrongKey, await serving.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(1, server.Counters.UnauthenticatedCut);
    }

    [Fact]
    public void TryEnter_PerSourceAndTotalLimits_RefusedUntilExit()
    {
        var admission = new HandshakeAdmission();
        Assert.True(admission.TryEnter("10.0.0.1", perSource: 2, total: 3));
        Assert.True(admission.TryEnter("10.0.0.1", 2, 3));
        Assert.False(admission.TryEnter("10.0.0.1", 2, 3)); // per source
        Assert.True(admission.TryEnter("10.0.0.2", 2, 3));
        Assert.False(admission.TryEnter("10.0.0.3", 2, 3)); // in all
        admission.Exit("10.0.0.1");
        Assert.True(admission.TryEnter("10.0.0.3", 2, 3));
        Assert.Equal(3, admission.Pending);
        admission.Exit("10.0.0.9"); // never entered: no effect
        Assert.Equal(3, admission.Pending);
    }

    private sealed class NoStreams : ClusterSync.Transport.IStreamChannel
    {
        public ValueTask<Stream> ConnectAsync(int peerIndex, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask<Stream> AcceptAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
    }
}
