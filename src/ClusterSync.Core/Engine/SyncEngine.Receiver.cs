using System.Buffers.Binary;
using ClusterSync.Connections;
using ClusterSync.Protocol;
using ClusterSync.Reliability;
using ClusterSync.Security;
using ClusterSync.Transport;

namespace ClusterSync.Engine;

public sealed partial class SyncEngine
{
    // Records of received Data datagrams waiting to be applied (receiver thread): decoded per datagram, applied together
    // under one hold of the table lock, at the latest before the receiver would block (see ApplyStaged).
    private const int StagedCapacity = 320;
    private const int StageGroup = 64;
    private const int LockGroup = 128;
    private readonly ConnectionEvent[] _receiveStaging = new ConnectionEvent[StagedCapacity];
    private int _stagedCount;
    private byte _stagedSender;
    private bool _deferApply; // set by the receiver loop while the transport holds more datagrams

    // CLUSTERSYNC_STAGED_APPLY=0 applies every datagram on its own (for comparisons on one machine, not for production).
    private static readonly bool s_stagedApply = Environment.GetEnvironmentVariable("CLUSTERSYNC_STAGED_APPLY") != "0";
    private readonly Queue<(byte Peer, ulong Lost)> _resyncNotifications = new();
    private IReceiveDropCounts? _dropCounts;
    private long _foldedEmpty;
    private long _foldedOversize;

    private void ReceiverLoop()
    {
        ReceiverThreadId = ThreadCpu.CurrentThreadId();
        var buffer = GC.AllocateUninitializedArray<byte>(65536);
        var token = _stop.Token;
        var buffered = s_stagedApply ? _channel as IBufferedReceive : null;
        try
        {
            while (!token.IsCancellationRequested)
            {
                long called = _trace is null ? 0 : _time.GetTimestamp();
                var pending = _channel.ReceiveAsync(buffer, token);
                var result = pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
                if (_trace is not null)
                {
                    TraceReceived(buffer.AsSpan(0, result.Length), called); // a benchmark's stage breakdown (SyncEngine.Trace.cs)
                }

                FoldTransportDrops();
                _counters.DatagramsReceived++;
                _counters.BytesReceived += result.Length;
                DropReason reason;
                try
                {
                    // While the transport already holds the next datagram, the records of this one may wait for it and
                    // be applied together; the last datagram of a batch applies everything staged before we block.
                    _deferApply = buffered is { HasBufferedDatagram: true };
                    reason = HandleDatagram(buffer.AsSpan(0, result.Length));
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // A bug, never a packet's fault: count it, log it once, and keep receiving.
                    reason = DropReason.Malformed;
                    if (++_counters.ReceiveFailures == 1)
                    {
                        Log.ReceiveFailed(_logger, ex);
                    }
                }

                if (reason != DropReason.None)
                {
                    _counters.Drops[(int)reason]++;
                }
                else
                {
                    _counters.DatagramsAccepted++;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            MarkFailed("receiver", ex);
            Log.ReceiverFailed(_logger, ex);
        }
        finally
        {
            _deferApply = false;
            ApplyStaged();
        }
    }

    /// <summary>
    /// Validates, authenticates and dispatches one datagram. Every rejection returns its reason (and is counted
    /// by the caller); nothing is applied before the packet has been authenticated and checked against replay.
    /// </summary>
    internal DropReason HandleDatagram(Span<byte> datagram)
    {
        var result = HandleDatagramCore(datagram);
        if (!_deferApply || _resyncNotifications.Count > 0)
        {
            ApplyStaged(); // nothing staged outlives a datagram handled on its own, nor a resync a handler may act on
        }

        // Resync notifications are raised here, outside every lock, so a handler may start a full sync; only once every
        // record received before them is applied (while the apply thread still holds some, at a later datagram: the
        // peers' heartbeats keep coming).
        while (_resyncNotifications.Count > 0 && _stagedCount == 0 && !_backlogActive)
        {
            var (peer, lost) = _resyncNotifications.Dequeue();
            ResyncNeeded?.Invoke(peer, lost);
        }

        return result;
    }

    /// <summary>Counts, as received and dropped, the datagrams the transport could not hand over (receiver thread).</summary>
    private void FoldTransportDrops()
    {
        if (_dropCounts is null)
        {
            return;
        }

        long empty = _dropCounts.EmptyDatagrams;
        long oversize = _dropCounts.OversizeDatagrams;
        if (empty != _foldedEmpty || oversize != _foldedOversize)
        {
            _counters.Drops[(int)DropReason.Empty] += empty - _foldedEmpty;
            _counters.Drops[(int)DropReason.Oversize] += oversize - _foldedOversize;
            _counters.DatagramsReceived += (empty - _foldedEmpty) + (oversize - _foldedOversize);
            _foldedEmpty = empty;
            _foldedOversize = oversize;
        }
    }

    private DropReason HandleDatagramCore(Span<byte> datagram)
    {
        if (datagram.IsEmpty)
        {
            return DropReason.Empty;
        }

        if (datagram.Length > _channel.MaxDatagramSize)
        {
            return DropReason.Oversize;
        }

        var status = PacketHeader.TryRead(datagram, out var header);
        if (status != DropReason.None)
        {
            return status;
        }

        var peer = _peersById[header.Sender];
        if (peer is null || header.Sender == MemberId)
        {
            return DropReason.UnknownSender;
        }

        bool sealedPacket = (header.Flags & HeaderFlags.Sealed) != 0;
        if (sealedPacket != (_key is not null))
        {
            return DropReason.InsecureMismatch;
        }

        int bodyLength;
        bool ackNow = false;
        lock (peer.Sync)
        {
            // Which key? The current epoch's, or (after authentication) a newer epoch: the peer restarted.
            PacketProtection opener;
            bool newEpoch = false;
            if (header.Epoch == peer.Epoch && peer.Opener is not null)
            {
                opener = peer.Opener;
            }
            else if (header.Epoch > peer.Epoch)
            {
                var candidate = CandidateOpener(peer, header.Sender, header.Epoch);
                if (candidate is null)
                {
                    return DropReason.DerivationLimited;
                }

                opener = candidate;
                newEpoch = true;
            }
            else
            {
                return DropReason.StaleEpoch;
            }

            // Replay pre-check (cheap, before decryption); committed only after authentication.
            if (!newEpoch)
            {
                if (header.IsControl)
                {
                    if (!peer.Control.Check(header.Sequence & ~PacketHeader.ControlSpace))
                    {
                        return DropReason.Replay;
                    }
                }
                else if (peer.Data.Check(header.Sequence) == WindowCheck.Duplicate)
                {
                    return DropReason.Replay;
                }
            }

            bodyLength = opener.Open(datagram);
            if (bodyLength < 0)
            {
                return DropReason.AuthenticationFailed;
            }

            if (header.Type == MessageType.Data && !DataFitsBacklog(datagram.Slice(PacketHeader.Size, bodyLength)))
            {
                // The table lock has been busy long enough to fill the apply backlog: unmarked, as if lost (NACK, resend).
                return DropReason.ApplyBacklogFull;
            }

            if (newEpoch)
            {
                AdoptEpoch(peer, header.Epoch);
            }

            if (header.IsControl)
            {
                peer.Control.Mark(header.Sequence & ~PacketHeader.ControlSpace);
            }
            else
            {
                if (peer.Data.Check(header.Sequence) == WindowCheck.TooFar)
                {
                    ulong lost = peer.Data.SlideFor(header.Sequence);
                    if (lost > 0)
                    {
                        RaiseResync(peer, lost, "gap wider than the receive window");
                    }
                }

                peer.Data.Mark(header.Sequence);
                peer.AckDue = true;
                ackNow = ++peer.UnackedDatagrams >= _options.AckEveryDatagrams;
            }

            Volatile.Write(ref peer.LastHeardTimestamp, _time.GetTimestamp());
        }

        var body = datagram.Slice(PacketHeader.Size, bodyLength);
        if (header.Type is not (MessageType.Data or MessageType.Heartbeat or MessageType.Ack))
        {
            // Every other message comes after the Data records received before it (applied, or handed to the apply
            // thread ahead of it). Heartbeats and acks read no table: handled at once, never behind the table lock.
            ApplyStaged();
        }

        if (ackNow)
        {
            SendAck(peer, force: true);
        }

        return header.Type switch
        {
            MessageType.Data => HandleData(body, peer.MemberId),
            MessageType.Ack => HandleAck(peer, body),
            MessageType.Heartbeat => HandleHeartbeat(peer, body),
            MessageType.Gone => HandleGone(peer, body),
            MessageType.Digest or MessageType.DigestRequest or MessageType.RangeEntries => QueueAntiEntropy(peer, header.Type, body),
            _ => DropReason.BadType,
        };
    }

    private void AdoptEpoch(PeerState peer, ulong epoch)
    {
        ulong previous = peer.Epoch;
        peer.Opener?.Dispose();
        peer.Opener = null;
        for (int i = 0; i < PeerState.CandidateSlots; i++)
        {
            if (peer.CandidateEpochs[i] == epoch)
            {
                peer.Opener = peer.CandidateOpeners[i];
            }
        }

        peer.ClearCandidates(keep: peer.Opener);
        peer.Epoch = epoch;
        peer.ResetForNewEpoch();
        Volatile.Write(ref peer.LifeStartTimestamp, _time.GetTimestamp());
        if (previous == 0)
        {
            peer.OutOfWindow = false; // first contact: the peer holds the window from the start (no burst outruns it)
        }

        ApplyPendingCover(peer);
        if (previous != 0)
        {
            _counters.PeerRestarts++;
            Log.PeerRestarted(_logger, peer.MemberId, epoch, previous);
        }
    }

    private const double DeriveBurst = 32;
    private const double DerivePerSecond = 16;

    /// <summary>
    /// The key of <paramref name="epoch"/> (newer than the peer's current one) for authenticating a packet, under the
    /// peer's lock: from the cache of recent candidates, else derived if the peer's derivation budget allows (32 at once,
    /// 16 a second after that), else null (the packet is dropped as <c>derivation_limited</c>). Forged headers naming new
    /// epochs therefore cost at most a few derivations a second; a peer that really restarted keeps sending and is heard.
    /// </summary>
    private PacketProtection? CandidateOpener(PeerState peer, ushort sender, ulong epoch)
    {
        for (int i = 0; i < PeerState.CandidateSlots; i++)
        {
            if (peer.CandidateEpochs[i] == epoch && peer.CandidateOpeners[i] is { } cached)
            {
                return cached;
            }
        }

        long now = _time.GetTimestamp();
        if (peer.DeriveTokens < 0)
        {
            peer.DeriveTokens = DeriveBurst;
        }
        else
        {
            double seconds = (now - peer.DeriveRefillTimestamp) / (double)_time.TimestampFrequency;
            peer.DeriveTokens = Math.Min(DeriveBurst, peer.DeriveTokens + (seconds * DerivePerSecond));
        }

        peer.DeriveRefillTimestamp = now;
        if (peer.DeriveTokens < 1)
        {
            return null;
        }

        peer.DeriveTokens -= 1;
        _counters.KeyDerivations++;
        int slot = peer.NextCandidateSlot;
        peer.NextCandidateSlot = (slot + 1) % PeerState.CandidateSlots;
        peer.CandidateOpeners[slot]?.Dispose();
        peer.CandidateOpeners[slot] = PacketProtection.Create(_key, sender, epoch);
        peer.CandidateEpochs[slot] = epoch;
        return peer.CandidateOpeners[slot];
    }

    /// <summary>
    /// Decodes an authenticated Data body and applies its records (internal for the micro benchmarks). The records are
    /// staged; they are applied before this returns unless the receiver loop defers them to apply with the next
    /// datagram's (<see cref="ApplyStaged"/>). Records of one datagram are applied in order, before any template record
    /// that follows them.
    /// </summary>
    internal DropReason HandleData(ReadOnlySpan<byte> body, byte sender = 0)
    {
        // The sender authenticated this body, so a malformed one is a bug on its side: drop the rest, count it.
        if (body.Length < 2)
        {
            return DropReason.Malformed;
        }

        int count = BinaryPrimitives.ReadUInt16BigEndian(body);
        var records = body[2..];
        DropReason result = DropReason.None;
        if (_stagedCount > 0 && sender != _stagedSender)
        {
            ApplyStaged(); // staged records share one sender (the relay decision is per sender)
        }

        _stagedSender = sender;
        var staging = _receiveStaging;
        for (int done = 0; done < count && result == DropReason.None;)
        {
            if (_stagedCount > staging.Length - StageGroup)
            {
                ApplyStaged();
            }

            // Decode a group behind what is staged; the table is touched only when the staged records are applied.
            int want = Math.Min(StageGroup, count - done);
            int n = RecordCodec.ReadMany(ref records, staging.AsSpan(_stagedCount, want));
            _stagedCount += n;
            bool template = false;
            if (n < want)
            {
                // A template record (SyncEngine.Templates.cs) stops the connection records' decoder: applied after them.
                template = StartsWithTemplate(records);
                result = template ? DropReason.None
                    : RecordCodec.TryRead(records, out _, out bool badExtension) == 0 && badExtension
                    ? DropReason.BadExtension
                    : DropReason.Malformed;
            }

            done += n;
            if (template)
            {
                ApplyStaged();
                WaitForBacklog(); // the template record is applied here, after the records before it
                int used = HandleTemplateRecord(records, NowMs());
                if (used == 0)
                {
                    result = DropReason.Malformed;
                }
                else
                {
                    records = records[used..];
                    done++;
                }
            }
        }

        if (!_deferApply)
        {
            ApplyStaged();
        }

        return result == DropReason.None && records.Length != 0 ? DropReason.Malformed : result;
    }

    /// <summary>
    /// Decodes and applies the authenticated Data bodies of consecutive datagrams as the receiver loop does for a batch
    /// its transport held: staged together, applied once (micro benchmarks). Returns the first drop reason, if any.
    /// </summary>
    internal DropReason HandleDataBatch(ReadOnlySpan<byte[]> bodies, byte sender = 0)
    {
        var result = DropReason.None;
        _deferApply = true;
        try
        {
            foreach (var body in bodies)
            {
                var r = HandleData(body, sender);
                if (result == DropReason.None)
                {
                    result = r;
                }
            }
        }
        finally
        {
            _deferApply = false;
            ApplyStaged();
        }

        return result;
    }

    /// <summary>
    /// Applies the staged records of received Data datagrams, in order, up to 128 per hold of the table lock, with the
    /// table's cache misses overlapped by one prefetch pipeline across datagram boundaries. Receiver thread.
    /// </summary>
    private void ApplyStaged()
    {
        int n = _stagedCount;
        if (n == 0)
        {
            return;
        }

        if (_backlogActive)
        {
            HandOffStaged(0); // behind the records the apply thread still holds
            return;
        }

        _stagedCount = 0;
        var group = new ReadOnlySpan<ConnectionEvent>(_receiveStaging, 0, n);
        long nowMs = NowMs();
        _relayTo = RelayTarget(_stagedSender);
        if (AppliedObserver is not null)
        {
            AppliedGroupTimestamp = _time.GetTimestamp();
        }

        // At most LockGroup records per hold of the table lock (the data plane's Submit waits no longer than before);
        // the prefetch pipeline runs across the holds, so the table's cache misses keep overlapping. A lock busy for more
        // than ApplyLockPatience: the rest goes to the apply thread and the receiver returns to the socket
        // (SyncEngine.ApplyBacklog.cs).
        for (int from = 0; from < n; from += LockGroup)
        {
            int to = Math.Min(from + LockGroup, n);
            bool taken = false;
            try
            {
                Monitor.TryEnter(_tableLock, ref taken);
                if (!taken)
                {
                    if (_offloadApply)
                    {
                        Monitor.TryEnter(_tableLock, ApplyLockPatience, ref taken);
                        if (!taken)
                        {
                            _relayTo = 0;
                            _stagedCount = n;
                            HandOffStaged(from);
                            return;
                        }
                    }
                    else
                    {
                        Monitor.Enter(_tableLock, ref taken); // stepped, or not started: no apply thread
                    }
                }

                if (from == 0)
                {
                    PrefetchBuckets(group, 0, PrefetchDistance * 2);
                }

                for (int i = from; i < to; i++)
                {
                    PrefetchAhead(group, i);
                    ApplyLocked(group[i], nowMs);
                }
            }
            finally
            {
                if (taken)
                {
                    Monitor.Exit(_tableLock);
                }
            }
        }

        _relayTo = 0;
    }

    private DropReason HandleAck(PeerState peer, ReadOnlySpan<byte> body)
    {
        Span<SequenceRange> ranges = stackalloc SequenceRange[AckMessage.MaxRanges];
        if (!AckMessage.TryRead(body, out ushort target, out ulong targetEpoch, out ulong cumulative, out ulong highest, ranges, out int count))
        {
            return DropReason.Malformed;
        }

        _counters.AcksReceived++;
        if (target != MemberId || targetEpoch != Epoch)
        {
            return DropReason.None; // about an earlier life of ours: nothing to do
        }

        if (Volatile.Read(ref peer.AckedEpoch) != Epoch)
        {
            Volatile.Write(ref peer.AckedThrough, 0);
            Volatile.Write(ref peer.AckedEpoch, Epoch);
        }

        if (cumulative > Volatile.Read(ref peer.AckedThrough))
        {
            if (count == 0 && cumulative == highest && cumulative <= LastDataSequence)
            {
                SampleRoundTrip(peer, cumulative);
            }

            Volatile.Write(ref peer.AckedThrough, Math.Min(cumulative, LastDataSequence));
        }

        for (int i = 0; i < count; i++)
        {
            _retransmitRequests.Enqueue((peer, Volatile.Read(ref peer.Generation), ranges[i]));
        }

        _counters.NackRangesReceived += count;
        WakeSenderForAck(count); // only when it has something to do: NACKs, or a send window to reopen (SyncEngine.Sender.cs)
        return DropReason.None;
    }

    /// <summary>
    /// One round-trip sample from an ack that covers our datagram <paramref name="sequence"/>, the newest the peer has,
    /// with nothing missing: from when it was first sent, unless it was ever resent to this peer (Karn), and not when the
    /// answer took longer than the dead interval (an outage, not the path). Receiver thread.
    /// </summary>
    private void SampleRoundTrip(PeerState peer, ulong sequence)
    {
        int slot = (int)(sequence % (ulong)_sentAt.Length);
        long sent = Volatile.Read(ref _sentAt[slot]);
        if (sent == 0 || Volatile.Read(ref peer.LastResent[slot]) >= sent)
        {
            return;
        }

        double ms = _time.GetElapsedTime(sent).TotalMilliseconds;
        if (ms > _options.DeadInterval.TotalMilliseconds)
        {
            return;
        }

        peer.AckRtt.Add(ms);
        Volatile.Write(ref peer.AckRttSampleTimestamp, _time.GetTimestamp());
        double holdoffMs = Math.Min(peer.AckRtt.RetryMs, _options.DeadInterval.TotalMilliseconds / 2);
        Volatile.Write(ref peer.ResendHoldoffTicks, (long)(holdoffMs * _time.TimestampFrequency / 1000));
    }

    private DropReason HandleHeartbeat(PeerState peer, ReadOnlySpan<byte> body)
    {
        if (!HeartbeatMessage.TryRead(body, out ulong last, out ulong oldest, out byte state, out byte priority, out byte link, out byte heardLinks))
        {
            return DropReason.Malformed;
        }

        _counters.HeartbeatsReceived++;
        NoteHeartbeatLink(peer, link, heardLinks);
        long now = _time.GetTimestamp();
        lock (peer.Sync)
        {
            if (peer.LastHeartbeatTimestamp != 0)
            {
                peer.LongestHeartbeatGapTicks = Math.Max(peer.LongestHeartbeatGapTicks, now - peer.LastHeartbeatTimestamp);
            }

            peer.LastHeartbeatTimestamp = now;
            peer.LastState = state;
            peer.LastPriority = priority;
            Volatile.Write(ref peer.StateHeard, true);
            peer.Data.NoteAnnounced(last);
            if (oldest > 1 && peer.Data.Cumulative + 1 < oldest)
            {
                // What we miss below 'oldest' can no longer be resent.
                ulong lost = peer.Data.SkipThrough(oldest - 1);
                if (lost > 0)
                {
                    RaiseResync(peer, lost, "missing updates left the sender's resend buffer");
                }
            }

            if (peer.Data.HasGaps)
            {
                peer.AckDue = true;
            }
        }

        return DropReason.None;
    }

    private DropReason HandleGone(PeerState peer, ReadOnlySpan<byte> body)
    {
        if (!GoneMessage.TryRead(body, out ushort target, out ulong targetEpoch, out var range))
        {
            return DropReason.Malformed;
        }

        _counters.GoneReceived++;
        if (target != MemberId || targetEpoch != Epoch)
        {
            return DropReason.None;
        }

        lock (peer.Sync)
        {
            if (range.Last > peer.Data.Cumulative)
            {
                ulong lost = peer.Data.SkipThrough(range.Last);
                if (lost > 0)
                {
                    RaiseResync(peer, lost, "the sender no longer holds them");
                }
            }
        }

        return DropReason.None;
    }

    private void RaiseResync(PeerState peer, ulong lost, string reason)
    {
        _counters.ResyncNeeded++;
        _counters.LostSequences += (long)lost;
        Log.ResyncNeeded(_logger, peer.MemberId, lost, reason);
        _resyncNotifications.Enqueue((peer.MemberId, lost));
    }
}
