namespace ClusterSync.Transport;

/// <summary>
/// A datagram channel that can send several datagrams to one peer in one call, with fewer kernel crossings than one
/// <c>SendAsync</c> each (the UDP transport: <c>sendmmsg</c>, UDP GSO). The engine's sender hands it the datagrams
/// it sealed in one pass over its queue; a channel without it gets them one at a time, as before.
/// </summary>
internal interface IDatagramBatchSender
{
    /// <summary>
    /// Sends <paramref name="datagrams"/> to peer <paramref name="peerIndex"/>, in order, synchronously; the buffers may
    /// be reused when it returns. As with <c>SendAsync</c>, delivery is not guaranteed.
    /// </summary>
    void SendBatch(ReadOnlySpan<ReadOnlyMemory<byte>> datagrams, int peerIndex);

    /// <summary>How datagrams leave and arrive, for the log, <c>/status</c> and the benchmarks (e.g. <c>sendmmsg+gso/recvmmsg+gro</c>).</summary>
    string TransportPath { get; }

    /// <summary>Grows when the path changes at run time (the kernel refused GSO: the channel fell back); the engine then logs <see cref="TransportPath"/> again.</summary>
    int PathChanges { get; }

    /// <summary>System calls (or channel calls) the batched sends took.</summary>
    long SendCalls { get; }
}
