using ClusterSync.Adaptive.Model;

namespace ClusterSync.Adaptive.Tests.Controller;

public sealed class ExposureLedgerTests
{
    private static readonly ConnectionKey Key = ConnectionKey.IPv4(0x0A000001, 0xC0A80101, 40000, 443, 6);

    [Fact]
    public void Totals_LiveNeverSyncedConnections_CountedBeforeTheyEnd()
    {
        var ledger = new ExposureLedger(LifetimeModel.DelayGrid);
        for (int i = 0; i < 10; i++)
        {
            ledger.Started(1_000_000, -1);
        }

        var (exposure, lifetime, _) = ledger.Totals(1_000_000 + 100_000);
        Assert.Equal(1000, exposure, 6); // ten live for 100 s, none replicated: all of it counts now, not when they end
        Assert.Equal(1000, lifetime, 6);
    }

    [Fact]
    public void Totals_LiveDelayedConnection_ExposureStopsAtItsDelay()
    {
        var ledger = new ExposureLedger(LifetimeModel.DelayGrid);
        ledger.Started(2_000_000, 3000);
        var (early, _, _) = ledger.Totals(2_000_000 + 1000);
        Assert.InRange(early, 0.9, 1.1);

        var (exposure, lifetime, _) = ledger.Totals(2_000_000 + 600_000);
        Assert.Equal(3, exposure, 6);   // announced at 3 s
        Assert.Equal(600, lifetime, 6); // alive for 10 min
    }

    [Fact]
    public void Totals_EndedConnections_ExactAndLiveOnesLeave()
    {
        var ledger = new ExposureLedger(LifetimeModel.DelayGrid);
        ledger.Started(0, 3000);
        ledger.Started(0, -1);
        ledger.Ended(new ConnectionOutcome(Key, 0, 0, 1000, ConnectionEndReason.Destroyed, false, 3000, float.NaN, 0, ProtocolState.TcpClose, default, false));
        ledger.Ended(new ConnectionOutcome(Key, 0, 0, 5000, ConnectionEndReason.Destroyed, false, -1, float.NaN, 0, ProtocolState.TcpClose, default, false));

        var (exposure, lifetime, _) = ledger.Totals(3_600_000);
        Assert.Equal(6, exposure, 6); // 1 s (ended before its delay) + 5 s (never synced)
        Assert.Equal(6, lifetime, 6);
        Assert.Equal(0, ledger.Live);
    }

    [Fact]
    public void Totals_NeverSyncClass_KeptApart()
    {
        var ledger = new ExposureLedger(LifetimeModel.DelayGrid);
        ledger.Started(0, 0);
        ledger.StartedNeverSyncClass(0);
        var (exposure, lifetime, neverClass) = ledger.Totals(10_000);
        Assert.Equal(0, exposure, 6);
        Assert.Equal(10, lifetime, 6);
        Assert.Equal(10, neverClass, 6);
    }
}
