using ClusterSync.Connections;
using ClusterSync.Protocol;

namespace ClusterSync.Engine;

/// <summary>
/// Stage timestamps of delta sync (the engine's <see cref="TimeProvider"/> timestamps), so a benchmark can break an
/// update's latency down: submitted → the sender's pass that takes it → its datagram sealed → handed to the transport
/// → returned by the peer's receive call → applied. Called on the engine's sender and receiver threads, only while set
/// (<see cref="SyncEngine.StageTrace"/>, before <c>Start</c>); an implementation must be cheap, allocate nothing and not throw.
/// </summary>
public interface ISyncStageTrace
{
    /// <summary>Sender thread: a pass over the queue starts (the sender is awake and about to take the queued connections).</summary>
    void SenderPass(long timestamp);

    /// <summary>Sender thread: the record of <paramref name="key"/> goes into data datagram <paramref name="sequence"/>.</summary>
    void RecordEncoded(in ConnectionKey key, ulong sequence);

    /// <summary>Sender thread: data datagram <paramref name="sequence"/> is sealed.</summary>
    void DatagramSealed(ulong sequence, long timestamp);

    /// <summary>Sender thread: data datagrams <paramref name="first"/>…<paramref name="last"/> were handed to the transport (the send call ran from <paramref name="start"/> to <paramref name="end"/>).</summary>
    void DatagramsSent(ulong first, ulong last, long start, long end);

    /// <summary>Receiver thread: the receive call made at <paramref name="called"/> returned data datagram <paramref name="sequence"/> of member <paramref name="sender"/> at <paramref name="returned"/>.</summary>
    void DatagramReceived(byte sender, ulong sequence, long called, long returned);
}

public sealed partial class SyncEngine
{
    private ISyncStageTrace? _trace;

    /// <summary>Stage timestamps for a benchmark's latency breakdown (null: none, the default). Set before <see cref="Start"/>.</summary>
    public ISyncStageTrace? StageTrace
    {
        get => _trace;
        set
        {
            if (Volatile.Read(ref _started) != 0)
            {
                throw new InvalidOperationException("Set the stage trace before the engine starts.");
            }

            _trace = value;
        }
    }

    /// <summary>Receiver thread, with a trace only: reports a received Data datagram (its header is read again; cleartext).</summary>
    private void TraceReceived(ReadOnlySpan<byte> datagram, long called)
    {
        long returned = _time.GetTimestamp();
        if (PacketHeader.TryRead(datagram, out var header) == DropReason.None && header.Type == MessageType.Data)
        {
            _trace!.DatagramReceived((byte)header.Sender, header.Sequence, called, returned);
        }
    }
}
