using ClusterSync.Transport;

namespace ClusterSync.Benchmarks;

/// <summary>A transport that drops what it is given and never receives: for benchmarks of one side of the engine.</summary>
internal sealed class DiscardChannel : IDatagramChannel
{
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
