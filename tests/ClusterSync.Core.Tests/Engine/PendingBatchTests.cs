using ClusterSync.Connections;
using ClusterSync.Engine;

namespace ClusterSync.Core.Tests.Engine;

public class PendingBatchTests
{
    private static readonly ConnectionKey A = EngineKit.Tcp(443, sourcePort: 1000);
    private static readonly ConnectionKey B = EngineKit.Tcp(443, sourcePort: 2000);

    private static ConnectionEvent Change(ConnectionEventKind kind, in ConnectionKey key, ProtocolState state, ulong version)
    {
        var e = ConnectionEvent.Create(kind, key, state, 60, 0);
        e.Entry.Version = version;
        return e;
    }

    [Fact]
    public void Upsert_NewThenUpdate_StaysNewWithLatestState()
    {
        var batch = new PendingBatch(4);

        Assert.False(batch.Upsert(Change(ConnectionEventKind.New, A, ProtocolState.TcpSynSent, 1)));
        Assert.True(batch.Upsert(Change(ConnectionEventKind.Update, A, ProtocolState.TcpEstablished, 2)));
        Assert.True(batch.Upsert(Change(ConnectionEventKind.Update, A, ProtocolState.TcpFinWait, 3)));

        var item = Assert.Single(batch.Items.ToArray());
        Assert.Equal(ConnectionEventKind.New, item.Kind);
        Assert.Equal(ProtocolState.TcpFinWait, item.Entry.State);
        Assert.Equal(3UL, item.Entry.Version);
    }

    [Fact]
    public void Upsert_UpdateThenDestroy_BecomesDestroy()
    {
        var batch = new PendingBatch(4);
        batch.Upsert(Change(ConnectionEventKind.Update, A, ProtocolState.TcpEstablished, 5));

        Assert.True(batch.Upsert(Change(ConnectionEventKind.Destroy, A, ProtocolState.None, 6)));

        var item = Assert.Single(batch.Items.ToArray());
        Assert.Equal(ConnectionEventKind.Destroy, item.Kind);
        Assert.Equal(6UL, item.Entry.Version);
    }

    [Fact]
    public void Upsert_NewThenDestroy_BecomesDestroy()
    {
        var batch = new PendingBatch(4);
        batch.Upsert(Change(ConnectionEventKind.New, A, ProtocolState.TcpSynSent, 1));

        batch.Upsert(Change(ConnectionEventKind.Destroy, A, ProtocolState.None, 2));

        Assert.Equal(ConnectionEventKind.Destroy, Assert.Single(batch.Items.ToArray()).Kind);
    }

    [Fact]
    public void Upsert_UpdateThenUpdate_StaysUpdate()
    {
        var batch = new PendingBatch(4);
        batch.Upsert(Change(ConnectionEventKind.Update, A, ProtocolState.TcpEstablished, 1));

        batch.Upsert(Change(ConnectionEventKind.Update, A, ProtocolState.TcpCloseWait, 2));

        var item = Assert.Single(batch.Items.ToArray());
        Assert.Equal(ConnectionEventKind.Update, item.Kind);
        Assert.Equal(ProtocolState.TcpCloseWait, item.Entry.State);
    }

    [Fact]
    public void Upsert_ManyChangesForFewKeys_CountIsOnePerKeyInFirstSeenOrder()
    {
        var batch = new PendingBatch(1);
        var keys = Enumerable.Range(0, 50).Select(i => EngineKit.Tcp(443, sourcePort: (ushort)(3000 + i))).ToArray();
        for (int round = 0; round < 5; round++)
        {
            for (int i = 0; i < keys.Length; i++)
            {
                batch.Upsert(Change(round == 0 ? ConnectionEventKind.New : ConnectionEventKind.Update, keys[i], ProtocolState.TcpEstablished, (ulong)((round * 100) + i + 1)));
            }
        }

        Assert.Equal(keys.Length, batch.Count);
        var items = batch.Items.ToArray();
        Assert.Equal(keys, items.Select(x => x.Key));
        Assert.All(items, x => Assert.Equal(ConnectionEventKind.New, x.Kind));
        Assert.Equal(401UL, items[0].Entry.Version);
    }

    [Fact]
    public void Upsert_DistinctKeys_KeptSeparately()
    {
        var batch = new PendingBatch(4);
        batch.Upsert(Change(ConnectionEventKind.New, A, ProtocolState.TcpSynSent, 1));
        batch.Upsert(Change(ConnectionEventKind.Update, B, ProtocolState.TcpEstablished, 2));

        Assert.Equal(2, batch.Count);
        Assert.Equal(ConnectionEventKind.New, batch.Items[0].Kind);
        Assert.Equal(ConnectionEventKind.Update, batch.Items[1].Kind);
    }

    [Fact]
    public void Clear_AfterUse_EmptiesAndForgetsKeys()
    {
        var batch = new PendingBatch(4);
        batch.Upsert(Change(ConnectionEventKind.New, A, ProtocolState.TcpSynSent, 1));
        batch.Upsert(Change(ConnectionEventKind.New, B, ProtocolState.TcpSynSent, 2));

        batch.Clear();

        Assert.Equal(0, batch.Count);
        Assert.True(batch.Items.IsEmpty);
        // A key seen before the clear is new again: an Update is not turned into a New.
        Assert.False(batch.Upsert(Change(ConnectionEventKind.Update, A, ProtocolState.TcpEstablished, 3)));
        Assert.Equal(ConnectionEventKind.Update, Assert.Single(batch.Items.ToArray()).Kind);
    }

    [Fact]
    public void Clear_Empty_IsNoOp()
    {
        var batch = new PendingBatch(4);

        batch.Clear();

        Assert.Equal(0, batch.Count);
    }
}
