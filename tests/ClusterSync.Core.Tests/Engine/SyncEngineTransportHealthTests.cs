namespace ClusterSync.Core.Tests.Engine;

/// <summary>
/// A datagram transport that fails every send (a plugin transport that lost its server) turns the member's health red
/// after a dead interval instead of being swapped silently; sporadic failures do not, and recovery clears it.
/// </summary>
public sealed class SyncEngineTransportHealthTests
{
    private sealed class FailingChannel(int peers) : IDatagramChannel
    {
        public volatile bool Failing;
        public int Sent;

        public int MaxDatagramSize => 65507;

        public int PeerCount => peers;

        public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, int peerIndex, CancellationToken cancellationToken = default)
        {
            if (Failing)
            {
                throw new IOException("no route to the transport's server");
            }

            Interlocked.Increment(ref Sent);
            return ValueTask.CompletedTask;
        }

        public async ValueTask<DatagramReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
            throw new InvalidOperationException("unreachable");
        }

        public void Dispose()
        {
        }
    }

    private static SyncEngine Create(FailingChannel channel, TimeProvider time) => new(new SyncEngineOptions
    {
        MemberId = 1,
        PeerMemberIds = [2],
        TableCapacity = 1024,
        Insecure = true,
        Policy = EngineKit.TestPolicy(),
    }, channel, key: null, time);

    /// <summary>A started insecure engine on a fresh fake clock and a channel that fails on demand.</summary>
    private static SyncEngine Started(out FakeTimeProvider time, out FailingChannel channel)
    {
        time = new FakeTimeProvider(EngineKit.Start);
        channel = new FailingChannel(1);
        var engine = Create(channel, time);
        engine.Start();
        return engine;
    }

    private static void Tick(FakeTimeProvider time, int milliseconds)
    {
        for (int t = 0; t < milliseconds; t += 5)
        {
            time.Advance(TimeSpan.FromMilliseconds(5));
        }
    }

    [Fact]
    public void TransportFailure_EverySendFailsForADeadInterval_ReportedUntilASendSucceeds()
    {
        using var engine = Started(out var time, out var channel);
        Tick(time, 250);
        Assert.True(channel.Sent > 0, "no heartbeat was sent");
        Assert.Null(engine.TransportFailure);

        channel.Failing = true;
        Tick(time, 150);
        Assert.True(engine.Counters.SendFailures > 0, "the failing channel was not used");
        Assert.Null(engine.TransportFailure); // failing, but not yet for a dead interval (300 ms)

        Tick(time, 300);
        var failure = engine.TransportFailure;
        Assert.NotNull(failure);
        Assert.Contains("failed every send", failure, StringComparison.Ordinal);
        Assert.True(engine.IsRunning, "a failing transport must not stop the engine");

        channel.Failing = false;
        Tick(time, 250);
        Assert.Null(engine.TransportFailure);
    }

    [Fact]
    public void TransportFailure_OneFailureAmongSuccesses_NotReported()
    {
        using var engine = Started(out var time, out var channel);
        Tick(time, 200);
        channel.Failing = true;
        Tick(time, 100); // one heartbeat interval: a failure or two
        channel.Failing = false;
        Tick(time, 600);
        Assert.True(engine.Counters.SendFailures > 0);
        Assert.Null(engine.TransportFailure);
    }
}
