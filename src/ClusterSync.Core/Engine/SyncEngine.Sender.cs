using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using ClusterSync.Connections;
using ClusterSync.Protocol;
using ClusterSync.Reliability;
using ClusterSync.Security;
using ClusterSync.Table;
using ClusterSync.Transport;

namespace ClusterSync.Engine;

public sealed partial class SyncEngine
{
    private readonly ResendBuffer _resend;
    private readonly ConnectionEvent[] _staging = new ConnectionEvent[1024];
    private readonly int[] _stagedUnit = new int[1024]; // records in the unit that starts at this staging index (1: alone)
    private readonly long[] _sentAt; // when each datagram in the resend buffer was first sent (replication lag)
    private readonly PacketProtection _dataSealer;
    private readonly PacketProtection _controlSealer;
    private readonly object _controlSealLock = new();
    private readonly ManualResetEventSlim _senderWake = new(false, 20);
    private readonly ConcurrentQueue<(PeerState Peer, long Generation, SequenceRange Range)> _retransmitRequests = new();
    private int _senderWork;
    private volatile bool _waitingForWindow; // the sender waits for acknowledgements (WaitForWindow)
    private readonly object _sendLock = new(); // held by whoever encodes and sends: the sender thread's pass, or an inline send
    private bool _inlinePass;                  // an inline send runs (under _sendLock): the window is checked, never waited for
    private volatile bool _inlineReady;        // started with a sender thread and InlineSend on: a submit may send (not before Start, not stepped)
    private const int InlineMaxPending = 256;
    private static readonly bool s_everyAckWakesSender = Environment.GetEnvironmentVariable("CLUSTERSYNC_ACK_WAKES_SENDER") == "1"; // the old behaviour, for comparisons
    private ulong _dataSequence;      // last data sequence used (sender thread writes)
    private ulong _sentSequence;      // last data sequence handed to the transport (LastDataSequence)
    private ulong _controlSequence;   // control sequence space counter (Interlocked)
    private long _startedTimestamp;
    private readonly IDatagramBatchSender? _batchSender; // the channel sends a pass's datagrams in few system calls
    private readonly ReadOnlyMemory<byte>[] _outgoing;   // sealed datagrams (resend buffer slots) not yet handed to the channel
    private int _outgoingCount;
    private int _pathChanges;
    private ulong _openSequence;
    private Memory<byte> _openSlot;
    private int _openLength;
    private int _openCount;

    /// <summary>Passes the sender started after its bounded spin found work (no block, no wake-up through the kernel).</summary>
    public long SenderSpinHits => Interlocked.Read(ref _counters.SenderSpinHits);

    /// <summary>Connections waiting for the sender (a gauge; the data plane may use it as backpressure).</summary>
    public int PendingCount => Volatile.Read(ref _pendingCount);

    /// <summary>
    /// The last data sequence sent in this epoch: being handed to the transport, not merely sealed (a datagram waiting
    /// in the sender's batch is not announced in heartbeats yet, or its peers would NACK it before it left).
    /// </summary>
    public ulong LastDataSequence => Volatile.Read(ref _sentSequence);

    private void SignalSender()
    {
        Volatile.Write(ref _senderWork, 1);
        _senderWake.Set();
    }

    /// <summary>
    /// An acknowledgement arrived (receiver thread): the sender is woken only when it has something to do — NACKed
    /// ranges to resend, or a send window to reopen. Waking it for every ack cost a context switch a few hundred times a
    /// second at 100,000 updates/s, on the CPUs the data path needs.
    /// </summary>
    private void WakeSenderForAck(int nackRanges)
    {
        if (nackRanges > 0 || _waitingForWindow || s_everyAckWakesSender)
        {
            _senderWake.Set();
        }
    }

    /// <summary>
    /// Submit path (the data plane's thread), with <see cref="SyncEngineOptions.InlineSend"/>: when the sender thread is
    /// not in a pass, sends what is queued right here — one wake-up of another thread less on the way to the peer, as
    /// conntrackd sends from its event loop. Never waits: not when the sender thread is busy (it then gets the work), not
    /// for a full window, not for more than <see cref="InlineMaxPending"/> queued connections, not with NACKs to answer
    /// (all the sender thread's). False: the caller signals the sender thread.
    /// </summary>
    private bool TrySendInline()
    {
        if (!_inlineReady || _options.MaxBatchDelay > TimeSpan.Zero || !_retransmitRequests.IsEmpty
            || Volatile.Read(ref _pendingCount) > InlineMaxPending || !Monitor.TryEnter(_sendLock))
        {
            return false;
        }

        try
        {
            if (_stop.IsCancellationRequested || Volatile.Read(ref _disposed) != 0)
            {
                return false;
            }

            _inlinePass = true;
            _steppedWindowFull = false;
            WaitForWindow(); // in an inline pass: notes a full window instead of waiting
            if (_steppedWindowFull)
            {
                return false;
            }

            _trace?.SenderPass(_time.GetTimestamp());
            int count;
            lock (_tableLock)
            {
                count = _pendingCount;
                if (count > InlineMaxPending)
                {
                    return false;
                }

                (_drainingSlots, _pendingSlots) = (_pendingSlots, _drainingSlots);
                _pendingCount = 0;
            }

            if (_templatesQueued)
            {
                DrainTemplates();
            }

            if (count > 0)
            {
                Drain(count); // a window that fills inside it is overrun by at most this pass (≤ 256 connections), as in stepped mode
            }

            Interlocked.Increment(ref _counters.InlineSends);
            return true;
        }
        finally
        {
            _inlinePass = false;
            Monitor.Exit(_sendLock);
        }
    }

    /// <summary>Passes sent on the submitting thread (<see cref="SyncEngineOptions.InlineSend"/>).</summary>
    public long InlineSends => Interlocked.Read(ref _counters.InlineSends);

    private void SenderLoop()
    {
        SenderThreadId = ThreadCpu.CurrentThreadId();
        long spinTicks = (long)(_options.SenderSpin.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        try
        {
            var token = _stop.Token;
            bool worked = false;
            while (!token.IsCancellationRequested)
            {
                if (_options.MaxBatchDelay > TimeSpan.Zero && Volatile.Read(ref _pendingCount) > 0)
                {
                    Thread.Sleep(_options.MaxBatchDelay);
                }

                int count;
                lock (_sendLock)
                {
                    Interlocked.Exchange(ref _senderWork, 0);
                    ProcessRetransmits();
                    _trace?.SenderPass(_time.GetTimestamp());
                    lock (_tableLock)
                    {
                        (_drainingSlots, _pendingSlots) = (_pendingSlots, _drainingSlots);
                        count = _pendingCount;
                        _pendingCount = 0;
                    }

                    if (_templatesQueued)
                    {
                        DrainTemplates(); // connection templates, in datagrams of their own (SyncEngine.Templates.cs)
                    }

                    if (count > 0)
                    {
                        Drain(count);
                    }
                }

                if (count > 0)
                {
                    worked = true;
                    continue;
                }

                if (Volatile.Read(ref _senderWork) != 0 || !_retransmitRequests.IsEmpty)
                {
                    continue;
                }

                if (worked && spinTicks > 0 && SpinForWork(spinTicks))
                {
                    continue; // new work within the spin: no sleep, no wake-up through the kernel
                }

                worked = false;
                _senderWake.Reset();
                if (Volatile.Read(ref _senderWork) != 0 || !_retransmitRequests.IsEmpty)
                {
                    continue;
                }

                _senderWake.Wait(100, token);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex)
        {
            MarkFailed("sender", ex);
            Log.SenderFailed(_logger, ex);
        }
    }

    /// <summary>
    /// Polls for new work (a submit, a NACK) for up to <paramref name="spinTicks"/> Stopwatch ticks after a pass that
    /// sent something; true when work came. Bounded, and only after work: an idle member does not spin.
    /// </summary>
    private bool SpinForWork(long spinTicks)
    {
        long until = System.Diagnostics.Stopwatch.GetTimestamp() + spinTicks;
        do
        {
            Thread.SpinWait(16);
            if (Volatile.Read(ref _senderWork) != 0 || !_retransmitRequests.IsEmpty)
            {
                Interlocked.Increment(ref _counters.SenderSpinHits);
                return true;
            }
        }
        while (System.Diagnostics.Stopwatch.GetTimestamp() < until && !_stop.IsCancellationRequested);

        return false;
    }

    /// <summary>
    /// Sends the latest state of every queued connection: copies entries out under the table lock in chunks
    /// (so the data plane and the receiver wait at most one chunk), then encodes and seals outside it.
    /// </summary>
    private void Drain(int count)
    {
        var slots = _drainingSlots;
        var staging = _staging;
        int i = 0;
        while (i < count)
        {
            int n = 0;
            lock (_tableLock)
            {
                for (int end = Math.Min(count, i + staging.Length); i < end && n < staging.Length; i++)
                {
                    ref var e = ref _table.EntryAt(slots[i], out var key);
                    if (Unsafe.IsNullRef(ref e) || (e.Status & ConnectionStatus.Pending) == 0)
                    {
                        continue; // removed, or already sent from an earlier occurrence of this slot
                    }

                    if (_controlOf is not null && WaitsForControlLocked(key))
                    {
                        continue; // staged with its control connection, which is pending too
                    }

                    e.Status &= ~ConnectionStatus.Pending;
                    if (!StageEntry(ref e, key, ref staging[n]))
                    {
                        continue;
                    }

                    _stagedUnit[n] = 1;
                    n++;
                    if (_units is not null && n < staging.Length)
                    {
                        n = StageRelatedLocked(key, staging[n - 1].Kind == ConnectionEventKind.Destroy, staging, n);
                    }
                }
            }

            Encode(staging.AsSpan(0, n));
        }
    }

    /// <summary>Copies an entry taken off the queue into a record to send; false when there is nothing to send. Under the table lock.</summary>
    private bool StageEntry(ref TableEntry e, in ConnectionKey key, ref ConnectionEvent r)
    {
        r.Key = key;
        r.Entry = _table.Read(key, e);
        r.HasCounters = false;
        if ((e.Status & ConnectionStatus.Tombstone) != 0 || (e.Status & ConnectionStatus.Announced) == 0)
        {
            // A tombstone, or the pending destroy of an earlier life under a new, unannounced one.
            if (e.Owner != MemberId && (e.Status & ConnectionStatus.Tombstone) == 0)
            {
                if (!SendsReplicaInHandover(e.Owner))
                {
                    return false; // replaced meanwhile by a peer's newer state: not ours to send
                }

                r.Kind = ConnectionEventKind.Update; // a split-brain handover sends the replicas this member holds too
                return true;
            }

            r.Kind = ConnectionEventKind.Destroy;
        }
        else
        {
            r.Kind = (e.Status & ConnectionStatus.Sent) != 0 ? ConnectionEventKind.Update : ConnectionEventKind.New;
            e.Status |= ConnectionStatus.Sent;
            if (_table.TryGetCounters(key, out var c))
            {
                r.Counters = c;
                r.HasCounters = true;
            }
        }

        return true;
    }

    private void Encode(ReadOnlySpan<ConnectionEvent> changes)
    {
        int capacity = _options.Mtu - PacketHeader.Size - (_dataSealer.Sealed ? PacketProtection.TagSize : 0);
        for (int i = 0; i < changes.Length; i++)
        {
            ref readonly var change = ref changes[i];
            if (_openCount == 0)
            {
                OpenDatagram();
            }
            else if (_units is not null && _stagedUnit[i] > 1 && _openLength + MeasureUnit(changes.Slice(i, _stagedUnit[i])) > capacity)
            {
                // A control connection and its related connections travel in one datagram: start a fresh one.
                CloseDatagram();
                OpenDatagram();
            }

            if (_units is not null && _stagedUnit[i] > 1 && 2 + MeasureUnit(changes.Slice(i, _stagedUnit[i])) > capacity)
            {
                _counters.RelatedSplit++; // larger than a datagram: cannot travel as one
            }

            var body = _openSlot.Span.Slice(PacketHeader.Size, capacity);
            int n = RecordCodec.Write(body[_openLength..], change);
            if (n == 0)
            {
                CloseDatagram();
                OpenDatagram();
                body = _openSlot.Span.Slice(PacketHeader.Size, capacity);
                n = RecordCodec.Write(body[_openLength..], change);
            }

            _openLength += n;
            _openCount++;
            _trace?.RecordEncoded(change.Key, _openSequence);
        }

        if (_openCount > 0)
        {
            CloseDatagram();
        }

        FlushOutgoing();
    }

    private static int MeasureUnit(ReadOnlySpan<ConnectionEvent> unit)
    {
        int total = 0;
        foreach (ref readonly var r in unit)
        {
            total += RecordCodec.Measure(r);
        }

        return total;
    }

    private void OpenDatagram()
    {
        WaitForWindow();
        _openSequence = _dataSequence + 1;
        _openSlot = _resend.Rent(_openSequence);
        _openLength = 2; // record count
        _openCount = 0;
    }

    private void CloseDatagram()
    {
        var span = _openSlot.Span;
        BinaryPrimitives.WriteUInt16BigEndian(span[PacketHeader.Size..], (ushort)_openCount);
        new PacketHeader(MessageType.Data, MemberId, _dataSealer.Sealed ? HeaderFlags.Sealed : HeaderFlags.None, Epoch, _openSequence).Write(span);
        int length = _dataSealer.Seal(span, _openLength);
        _resend.Commit(_openSequence, length);
        long sealedAt = _time.GetTimestamp();
        Volatile.Write(ref _sentAt[(int)(_openSequence % (ulong)_sentAt.Length)], sealedAt);
        _trace?.DatagramSealed(_openSequence, sealedAt);
        Volatile.Write(ref _dataSequence, _openSequence);
        var datagram = _openSlot[..length];
        if (_batchSender is not null)
        {
            // Sent with the rest of this pass (at its end, before the window makes the sender wait, or when full):
            // one system call, and one trip through the kernel per run of equal-length datagrams (UDP GSO).
            _outgoing[_outgoingCount++] = datagram;
            if (_outgoingCount == _outgoing.Length)
            {
                FlushOutgoing();
            }
        }
        else
        {
            Volatile.Write(ref _sentSequence, _openSequence);
            long start = _trace is null ? 0 : _time.GetTimestamp();
            for (int i = 0; i < _peers.Length; i++)
            {
                Send(datagram, i);
            }

            _trace?.DatagramsSent(_openSequence, _openSequence, start, _time.GetTimestamp());
        }

        _counters.DatagramsSent++;
        _counters.BytesSent += length;
        _counters.UpdatesSent += _openCount;
        _openCount = 0;
    }

    /// <summary>Hands the datagrams sealed so far to the channel, for every peer (sender thread).</summary>
    private void FlushOutgoing()
    {
        if (_outgoingCount == 0)
        {
            return;
        }

        var batch = new ReadOnlySpan<ReadOnlyMemory<byte>>(_outgoing, 0, _outgoingCount);
        Volatile.Write(ref _sentSequence, _dataSequence); // every datagram sealed so far is in this batch, leaving now
        long start = _trace is null ? 0 : _time.GetTimestamp();
        for (int i = 0; i < _peers.Length; i++)
        {
            try
            {
                _batchSender!.SendBatch(batch, i);
                NoteSendOk();
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                // Stopping: the channel is closing under us.
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                NoteSendFailed(ex);
            }
        }

        _trace?.DatagramsSent(_dataSequence - (ulong)_outgoingCount + 1, _dataSequence, start, _time.GetTimestamp());
        _outgoingCount = 0;
        int changes = _batchSender!.PathChanges;
        if (changes != _pathChanges)
        {
            _pathChanges = changes;
            Log.TransportPathChanged(_logger, MemberId, _batchSender.TransportPath);
        }
    }

    /// <summary>How this member's datagrams leave and arrive (see <c>UdpDatagramChannel.TransportPath</c>); <c>channel</c> for a transport that sends one at a time.</summary>
    public string TransportPath => _batchSender?.TransportPath ?? "channel";

    /// <summary>Send calls the transport made for data (batched transports only; 0 otherwise).</summary>
    public long TransportSendCalls => _batchSender?.SendCalls ?? 0;

    private void Send(ReadOnlyMemory<byte> datagram, int peerIndex, int link = -1)
    {
        try
        {
            var pending = link < 0 ? _channel.SendAsync(datagram, peerIndex, _stop.Token) : _multi!.SendOnLinkAsync(datagram, peerIndex, link, _stop.Token);
            if (!pending.IsCompletedSuccessfully)
            {
                pending.AsTask().GetAwaiter().GetResult();
            }

            NoteSendOk();
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
            // Stopping: the channel is closing under us.
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            NoteSendFailed(ex);
        }
    }

    private void NoteSendOk()
    {
        if (_lastSendFailedTimestamp != 0)
        {
            Volatile.Write(ref _lastSendOkTimestamp, _time.GetTimestamp()); // only while failures are on record
        }
    }

    private void NoteSendFailed(Exception ex)
    {
        // A transport failure loses this datagram, which the protocol repairs; it must not stop the member.
        // Failing without a success for a dead interval turns the member's health red (TransportFailure).
        long now = _time.GetTimestamp();
        if (Volatile.Read(ref _lastSendFailedTimestamp) == 0 || Volatile.Read(ref _lastSendOkTimestamp) >= Volatile.Read(ref _lastSendFailedTimestamp))
        {
            Volatile.Write(ref _sendFailingSince, now);
        }

        Volatile.Write(ref _lastSendFailedTimestamp, now);
        if (Interlocked.Increment(ref _counters.SendFailures) == 1)
        {
            Log.SendFailed(_logger, ex);
        }
    }

    /// <summary>
    /// Waits while too many datagrams are unacknowledged by a live peer; pending changes keep coalescing meanwhile. A
    /// peer whose acknowledgements have not moved for a dead interval while it is behind (or that restarted) stops
    /// holding the window back, as its death would; it holds it again once its acknowledgements are within the window.
    /// </summary>
    private void WaitForWindow()
    {
        bool stalled = false;
        while (!_stop.IsCancellationRequested)
        {
            ulong floor = _dataSequence;
            long now = _time.GetTimestamp();
            foreach (var p in _peers)
            {
                if (!IsLive(p, now) || Volatile.Read(ref p.LastState) == (byte)Membership.MemberState.Down)
                {
                    continue; // a peer that said it stops (Down) holds nothing back
                }

                ulong acked = Volatile.Read(ref p.AckedEpoch) == Epoch ? Volatile.Read(ref p.AckedThrough) : 0;
                if (acked != p.WindowAcked || acked >= _dataSequence)
                {
                    p.WindowAcked = acked;
                    p.WindowProgressTimestamp = now;
                }

                bool within = _dataSequence - acked < (ulong)_options.SendWindowDatagrams;
                if (p.OutOfWindow)
                {
                    if (!within)
                    {
                        continue;
                    }

                    p.OutOfWindow = false;
                    Log.PeerBackInWindow(_logger, p.MemberId, acked);
                }
                else if (!within && Elapsed(p.WindowProgressTimestamp, now, _time) > (long)_options.DeadInterval.TotalMilliseconds) // the configured dead interval: leaving the window is cheap and undone by its next ack, a wedged window is not (simulator seed 9316)
                {
                    p.OutOfWindow = true;
                    _counters.WindowPeersDropped++;
                    Log.PeerDroppedFromWindow(_logger, p.MemberId, acked, _dataSequence, (long)_options.DeadInterval.TotalMilliseconds);
                    continue;
                }

                if (acked < floor)
                {
                    floor = acked;
                }
            }

            if (_dataSequence - floor < (ulong)_options.SendWindowDatagrams)
            {
                return;
            }

            FlushOutgoing(); // what is sealed goes out before the sender waits for acknowledgements of it

            if (_stepped || _inlinePass)
            {
                _steppedWindowFull = true; // stepped mode (SyncEngine.Stepped.cs): report the full window instead of waiting
                return;
            }

            if (!stalled)
            {
                _counters.WindowStalls++;
                stalled = true;
            }

            ProcessRetransmits();
            _waitingForWindow = true; // an ack wakes the sender now (WakeSenderForAck)
            _senderWake.Reset();
            _senderWake.Wait(1);
            _waitingForWindow = false;
        }
    }

    /// <summary>
    /// A peer heard from within the dead interval; one never heard from counts as live during the first dead
    /// interval after start, so a burst at start-up cannot overrun a peer that has not spoken yet.
    /// </summary>
    private bool IsLive(PeerState p, long nowTimestamp)
    {
        long heard = Volatile.Read(ref p.LastHeardTimestamp);
        if (heard == 0)
        {
            heard = _startedTimestamp;
        }

        return Elapsed(heard, nowTimestamp, _time) <= PeerDeadMs(p); // the link's dead interval (SyncEngine.Heartbeat.cs)
    }

    /// <summary>Answers NACKs: resends what the buffer still holds, reports the rest as Gone.</summary>
    private void ProcessRetransmits()
    {
        int budget = 4096;
        long now = _time.GetTimestamp();
        long minHoldoff = (long)(_options.RetransmitHoldoff.TotalSeconds * _time.TimestampFrequency);
        while (budget > 0 && _retransmitRequests.TryDequeue(out var request))
        {
            var (peer, generation, range) = request;
            if (generation != Volatile.Read(ref peer.Generation))
            {
                continue; // NACKed by an earlier life of the peer: the new life asks for what it misses itself
            }

            // A datagram resent to this peer less than a round trip ago is on its way: the peer keeps NACKing it until
            // it arrives, and each of those NACKs would cost another copy (on a 200 ms link, ten at a 20 ms NACK pace).
            long holdoff = Math.Max(minHoldoff, Volatile.Read(ref peer.ResendHoldoffTicks));
            ulong goneFirst = 0;
            ulong goneLast = 0;
            ulong last = Math.Min(range.Last, _dataSequence);
            // What the peer acknowledged since it NACKed (a full sync's cover) needs no resend.
            ulong acked = Volatile.Read(ref peer.AckedEpoch) == Epoch ? Volatile.Read(ref peer.AckedThrough) : 0;
            for (ulong s = Math.Max(range.First, acked + 1); s <= last && budget > 0; s++)
            {
                if (_resend.TryGet(s, out var datagram))
                {
                    ref long stamp = ref peer.LastResent[(int)(s % (ulong)peer.LastResent.Length)];
                    if (stamp != 0 && now - stamp < holdoff)
                    {
                        continue;
                    }

                    Volatile.Write(ref stamp, now);
                    Send(datagram, peer.PeerIndex);
                    _counters.Retransmissions++;
                    budget--;
                }
                else
                {
                    if (goneFirst == 0)
                    {
                        goneFirst = s;
                    }

                    goneLast = s;
                }
            }

            if (goneFirst != 0)
            {
                SendGone(peer, new SequenceRange(goneFirst, goneLast));
            }
        }
    }

    private void SendGone(PeerState peer, SequenceRange range)
    {
        Span<byte> body = stackalloc byte[GoneMessage.Size];
        ulong peerEpoch;
        lock (peer.Sync)
        {
            peerEpoch = peer.Epoch;
        }

        GoneMessage.Write(body, peer.MemberId, peerEpoch, range);
        SendControl(MessageType.Gone, body, peer.PeerIndex);
        _counters.GoneSent++;
    }

    /// <summary>Seals and sends one control message (ack, heartbeat, gone) in the control sequence space.</summary>
    private void SendControl(MessageType type, ReadOnlySpan<byte> body, int peerIndex, int link = -1)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(PacketHeader.Size + body.Length + PacketProtection.TagSize);
        int length;
        lock (_controlSealLock)
        {
            ulong seq = PacketHeader.ControlSpace | ++_controlSequence;
            new PacketHeader(type, MemberId, _controlSealer.Sealed ? HeaderFlags.Sealed : HeaderFlags.None, Epoch, seq).Write(buffer);
            body.CopyTo(buffer.AsSpan(PacketHeader.Size));
            length = _controlSealer.Seal(buffer, body.Length);
        }

        try
        {
            Send(buffer.AsMemory(0, length), peerIndex, link);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
