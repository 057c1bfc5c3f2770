using System.Collections.Concurrent;

namespace ClusterSync.Transport;

/// <summary>One sync link: its configured id and the channel (for UDP, one socket on the link's local address).</summary>
public sealed record SyncLink(byte Id, IDatagramChannel Channel);

/// <summary>
/// Several sync links (for example a dedicated sync network and a cross-cable) seen by the engine as one channel.
/// <see cref="SendAsync"/> sends on the link that carries the peer's traffic (chosen by the engine's link health,
/// <see cref="Route"/>); <see cref="SendOnLinkAsync"/> sends on a given link (heartbeats go on every link).
/// Each link has its own receive thread; received datagrams are handed to the engine's single receive loop in
/// arrival order, with the link they came on (<see cref="LastReceivedLink"/>). Links are ordered by id.
/// The receive threads start with <see cref="StartReceiving"/> (the engine's <c>Start</c>, which first gives each the sync
/// threads' scheduling, <c>sync.scheduler</c>), or at the first <see cref="ReceiveAsync"/> without an engine; until
/// then datagrams wait in the links' sockets.
/// </summary>
public sealed class MultiLinkChannel : IDatagramChannel, IReceiveDropCounts, IDatagramBatchSender, IBufferedReceive
{
    private const int BufferCount = 512;
    private readonly SyncLink[] _links;
    private readonly int[] _route;
    private readonly ConcurrentQueue<byte[]> _free = new();
    private readonly ConcurrentQueue<(byte[] Buffer, int Length, int Peer, int Link)> _ready = new();
    private readonly SemaphoreSlim _freeCount;
    private readonly SemaphoreSlim _readyCount = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread[] _threads;
    private readonly int[] _threadIds;
    private readonly object _startLock = new();
    private Action<byte>? _prologue;
    private bool _started;
    private long _receiveFailures;
    private int _disposed;

    public MultiLinkChannel(IEnumerable<SyncLink> links)
    {
        _links = [.. links.OrderBy(l => l.Id)];
        if (_links.Length is < 1 or > Protocol.HeartbeatMessage.MaxLinks)
        {
            throw new ArgumentException($"expected 1 to {Protocol.HeartbeatMessage.MaxLinks} sync links, found {_links.Length}", nameof(links));
        }

        if (_links.Select(l => l.Id).Distinct().Count() != _links.Length)
        {
            throw new ArgumentException("sync link ids must be unique", nameof(links));
        }

        PeerCount = _links[0].Channel.PeerCount;
        if (_links.Any(l => l.Channel.PeerCount != PeerCount))
        {
            throw new ArgumentException("every sync link must reach the same peers", nameof(links));
        }

        MaxDatagramSize = _links.Min(l => l.Channel.MaxDatagramSize);
        _route = new int[PeerCount];
        for (int i = 0; i < BufferCount; i++)
        {
            _free.Enqueue(GC.AllocateUninitializedArray<byte>(MaxDatagramSize + 1));
        }

        _freeCount = new SemaphoreSlim(BufferCount);
        _threads = new Thread[_links.Length];
        _threadIds = new int[_links.Length];
        for (int l = 0; l < _links.Length; l++)
        {
            int link = l;
            _threads[l] = new Thread(() => RunLink(link)) { IsBackground = true, Name = $"cs-link-{_links[l].Id}" };
        }
    }

    /// <summary>
    /// Starts every link's receive thread (once; later calls do nothing, as do calls after <see cref="Dispose"/>). Each
    /// thread first runs <paramref name="prologue"/> with its link id — the engine applies the sync threads' scheduling
    /// there, as its own sender and receiver do — then receives.
    /// </summary>
    public void StartReceiving(Action<byte>? prologue = null)
    {
        lock (_startLock)
        {
            if (_started || Volatile.Read(ref _disposed) != 0)
            {
                return;
            }

            _started = true;
            _prologue = prologue;
            foreach (var t in _threads)
            {
                t.Start();
            }
        }
    }

    /// <summary>Kernel thread ids of the links' receive threads, in link order (0 until a thread runs), for CPU accounting and tests.</summary>
    public IReadOnlyList<int> ReceiveThreadIds
    {
        get
        {
            var ids = new int[_threadIds.Length];
            for (int i = 0; i < ids.Length; i++)
            {
                ids[i] = Volatile.Read(ref _threadIds[i]);
            }

            return ids;
        }
    }

    private void RunLink(int link)
    {
        _prologue?.Invoke(_links[link].Id); // the scheduling first: the id recorded below is a thread already under it
        Volatile.Write(ref _threadIds[link], Engine.ThreadCpu.CurrentThreadId());
        ReceiveLoop(link);
    }

    public int MaxDatagramSize { get; }

    public int PeerCount { get; }

    public int LinkCount => _links.Length;

    /// <summary>Link ids in link order (ascending).</summary>
    public IReadOnlyList<byte> LinkIds => _links.Select(l => l.Id).ToArray();

    /// <summary>The link index of the datagram the last <see cref="ReceiveAsync"/> returned (the receive loop's thread only).</summary>
    public int LastReceivedLink { get; internal set; }

    /// <summary>Datagrams lost because a link's receive failed unexpectedly (the link's thread then stops).</summary>
    public long ReceiveFailures => Interlocked.Read(ref _receiveFailures);

    /// <inheritdoc />
    public long EmptyDatagrams => _links.Sum(l => (l.Channel as IReceiveDropCounts)?.EmptyDatagrams ?? 0);

    /// <inheritdoc />
    public long OversizeDatagrams => _links.Sum(l => (l.Channel as IReceiveDropCounts)?.OversizeDatagrams ?? 0);

    /// <summary>Sends <paramref name="peer"/>'s traffic on link <paramref name="link"/> from now on.</summary>
    public void Route(int peer, int link) => Volatile.Write(ref _route[peer], link);

    public int RouteOf(int peer) => Volatile.Read(ref _route[peer]);

    public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, int peerIndex, CancellationToken cancellationToken = default)
        => _links[Volatile.Read(ref _route[peerIndex])].Channel.SendAsync(datagram, peerIndex, cancellationToken);

    /// <summary>Sends a batch on the link that carries the peer's traffic (batched where that link's channel can).</summary>
    public void SendBatch(ReadOnlySpan<ReadOnlyMemory<byte>> datagrams, int peerIndex)
    {
        var channel = _links[Volatile.Read(ref _route[peerIndex])].Channel;
        if (channel is IDatagramBatchSender batch)
        {
            batch.SendBatch(datagrams, peerIndex);
            return;
        }

        foreach (var d in datagrams)
        {
            var pending = channel.SendAsync(d, peerIndex);
            if (!pending.IsCompletedSuccessfully)
            {
                pending.AsTask().GetAwaiter().GetResult();
            }
        }
    }

    /// <summary>Each link's path (<see cref="UdpDatagramChannel.TransportPath"/>), by link id: <c>1: sendmmsg+gso/recvmmsg+gro, 2: …</c>.</summary>
    public string TransportPath => string.Join(", ", _links.Select(l => $"{l.Id}: {(l.Channel as IDatagramBatchSender)?.TransportPath ?? "channel"}"));

    /// <inheritdoc />
    public int PathChanges
    {
        get
        {
            int changes = 0;
            foreach (var l in _links)
            {
                changes += (l.Channel as IDatagramBatchSender)?.PathChanges ?? 0;
            }

            return changes;
        }
    }

    /// <inheritdoc />
    public long SendCalls => _links.Sum(l => (l.Channel as IDatagramBatchSender)?.SendCalls ?? 0);

    public ValueTask SendOnLinkAsync(ReadOnlyMemory<byte> datagram, int peerIndex, int link, CancellationToken cancellationToken = default)
        => _links[link].Channel.SendAsync(datagram, peerIndex, cancellationToken);

    /// <inheritdoc />
    /// <remarks>A datagram a link's thread has handed over (the engine's receiver is the only one taking them).</remarks>
    bool IBufferedReceive.HasBufferedDatagram => _readyCount.CurrentCount > 0;

    public ValueTask<DatagramReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!Volatile.Read(ref _started))
        {
            StartReceiving(); // used without an engine: nobody applies a scheduling first
        }

        while (!_readyCount.Wait(250, cancellationToken))
        {
            if (Volatile.Read(ref _disposed) != 0)
            {
                throw new OperationCanceledException("The channel is closed.");
            }
        }

        _ready.TryDequeue(out var item);
        try
        {
            item.Buffer.AsSpan(0, item.Length).CopyTo(buffer.Span);
        }
        finally
        {
            _free.Enqueue(item.Buffer);
            _freeCount.Release();
        }

        LastReceivedLink = item.Link;
        return new ValueTask<DatagramReceiveResult>(new DatagramReceiveResult(item.Length, item.Peer));
    }

    private void ReceiveLoop(int link)
    {
        var token = _stop.Token;
        var channel = _links[link].Channel;
        try
        {
            while (!token.IsCancellationRequested)
            {
                _freeCount.Wait(token);
                _free.TryDequeue(out var buffer);
                DatagramReceiveResult result;
                try
                {
                    var pending = channel.ReceiveAsync(buffer, token);
                    result = pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
                }
                catch
                {
                    _free.Enqueue(buffer!);
                    _freeCount.Release();
                    throw;
                }

                _ready.Enqueue((buffer!, result.Length, result.PeerIndex, link));
                _readyCount.Release();
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception) when (!token.IsCancellationRequested)
        {
            // The link's socket failed: the link stops receiving, so its heartbeats stop and link health takes it down.
            Interlocked.Increment(ref _receiveFailures);
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        bool started;
        lock (_startLock)
        {
            started = _started; // no thread starts after this (StartReceiving checks _disposed under the lock)
        }

        _stop.Cancel();
        foreach (var l in _links)
        {
            l.Channel.Dispose();
        }

        if (started)
        {
            foreach (var t in _threads)
            {
                t.Join(TimeSpan.FromSeconds(5));
            }
        }

        _stop.Dispose();
    }
}
