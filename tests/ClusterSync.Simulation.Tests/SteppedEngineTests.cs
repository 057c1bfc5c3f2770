using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Policy;
using ClusterSync.Security;

namespace ClusterSync.Simulation.Tests;

/// <summary>The Core seam: an engine in stepped mode runs no thread; its sender sends only while the window has room.</summary>
public sealed class SteppedEngineTests
{
    [Fact]
    public void StepSender_WindowFull_KeepsTheRestQueuedUntilAcked()
    {
        var world = new SimWorld(1);
        var clock = new MemberClock(world);
        var sent = new List<byte[]>();
        var net = new SimNetwork(world, 2, (_, b) => sent.Add(b));
        var options = new SyncEngineOptions
        {
            MemberId = 1,
            PeerMemberIds = [2],
            Mtu = 256,
            ResendBufferDatagrams = 64,
            SendWindowDatagrams = 16,
            AckEveryDatagrams = 8,
            TableCapacity = 1024,
            Policy = new PolicyOptions { DefaultClass = "default", Classes = [new ServiceClassOptions { Name = "default", Policy = "full" }], Rules = [] },
        };
        using var engine = new SyncEngine(options, new SimDatagramChannel(net, 1, [2], 256), new ClusterKey(new byte[32]), clock);
        engine.StartStepped();
        var changes = Enumerable.Range(0, 400)
            .Select(i => ConnectionEvent.Create(ConnectionEventKind.New, ConnectionKey.IPv4(0x0A000001u + (uint)i, 0xC0A80001u, 1000, 443, 6), ProtocolState.TcpEstablished, 3600, 0))
            .ToArray();

        engine.Submit(changes);
        int first = engine.StepSender();
        int second = engine.StepSender();

        Assert.InRange(first, 1, 399);
        Assert.Equal(0, second);
        Assert.False(engine.SendWindowOpen);
        Assert.Equal(400 - first, engine.PendingCount);
        Assert.InRange(engine.LastDataSequence, 16UL, 17UL);
    }
}
