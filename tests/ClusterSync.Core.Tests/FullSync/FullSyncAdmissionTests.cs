namespace ClusterSync.Core.Tests.FullSync;

/// <summary>Transfer slots go to clients that proved the key; unauthenticated connections are cut early and counted (issue 14, bug 2).</summary>
public sealed class FullSyncAdmissionTests : IDisposable
{
    private readonly FullSyncRig _rig = new(50);

    public void Dispose() => _rig.Dispose();

    private static byte[] ClientHello(byte member) => FullSyncHandshake.NewClientHello(member);

    [Fact]
    public async Task ServeAsync_HelloWithoutProofHoldsConnection_JoinerStillGetsTheOnlySlotAndIdlerIsCutAtDeadline()
    {
        await using var server = _rig.ServerOnFakeClock(maxConcurrent: 1);

        // An attacker without the key: a valid ClientHello naming a member, then silence.
        var (attackerServerSide, attacker) = MemoryDuplex.CreatePair();
        await attacker.WriteAsync(ClientHello(2));
        var idle = server.ServeAsync(attackerServerSide, CancellationToken.None);

        var (result, served) = await _rig.Transfer(server);

        Assert.Equal(FullSyncStatus.Completed, result.Status);
        Assert.Equal(FullSyncStatus.Completed, served);
        Assert.False(idle.IsCompleted);

        _rig.Time.Advance(server.HandshakeTimeout);
        Assert.Equal(FullSyncStatus.TimedOut, await idle.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(1, server.Counters.UnauthenticatedCut);
        attacker.Dispose();
    }

    [Fact]
    public async Task ServeAsync_AuthenticatedButEverySlotTaken_ClientRefusedByErrorFrameAndRetries()
    {
        await using var server = _rig.ServerOnFakeClock(maxConcurrent: 0);
        var (result, served) = await _rig.Transfer(server);

        Assert.Equal(FullSyncStatus.Refused, result.Status);
        Assert.Equal(FullSyncStatus.Refused, served);
        Assert.Equal(0, server.Counters.UnauthenticatedCut);
        Assert.Equal(0, _rig.Joiner.TableCount);
    }

    [Fact]
    public async Task ServeAsync_WrongKey_CutAndCounted()
    {
        await using var server = _rig.ServerOnFakeClock();
        var (result, served) = await _rig.Transfer(server, clientKey: ClusterKey.Generate());

        Assert.Equal(FullSyncStatus.WrongKey, result.Status);
        Assert.Equal(FullSyncStatus.WrongKey, served);
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
}
