using ClusterSync.Engine;
using ClusterSync.Policy;
using ClusterSync.Security;
using ClusterSync.Transport;

namespace ClusterSync.Tests;

// Compiled into ClusterSync.Benchmarks and ClusterSync.Training.Tests (linked; both see Core's internals).

/// <summary>A transport that drops what it is given and never receives: for benchmarks of one side of the engine and for tests that drive an engine without peers.</summary>
internal sealed class DiscardChannel : IDatagramChannel
{
    /// <summary>
    /// Member <paramref name="member"/> of a two-member cluster, never started, on a discarding channel with a fresh key:
    /// its table of <paramref name="tableCapacity"/> connections and its policy gate are all a benchmark touches.
    /// </summary>
    public static SyncEngine Engine(byte member, byte peer, int tableCapacity, PolicyOptions? policy = null)
    {
        var options = new SyncEngineOptions { MemberId = member, PeerMemberIds = [peer], TableCapacity = tableCapacity };
        return new SyncEngine(policy is null ? options : options with { Policy = policy }, new DiscardChannel(), ClusterKey.Generate());
    }

    public int MaxDatagramSize => 65507;

    public int PeerCount => 1;

    public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, int peerIndex, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public async ValueTask<DatagramReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        return default;
    }

    public void Dispose()
    {
    }
}
