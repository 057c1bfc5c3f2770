namespace ClusterSync.Engine;

/// <summary>
/// Stepped mode, for the deterministic fault simulator (src/ClusterSync.Simulation): the engine runs no thread and
/// no timer of its own. The simulator calls <see cref="OnTick"/> every ack interval of its clock, hands every datagram
/// to <see cref="HandleDatagram"/> (what the receiver thread does), and calls <see cref="StepSender"/> after every
/// event (what the sender thread does when woken), all on one thread, so a run is a function of its seed.
/// </summary>
public sealed partial class SyncEngine
{
    private const int SteppedPiece = 16;
    private bool _stepped;
    private bool _steppedWindowFull;

    /// <summary>Starts the engine without its sender, receiver and control threads (see the type's remarks).</summary>
    internal void StartStepped()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The engine is already started.");
        }

        _stepped = true;
        _startedTimestamp = _time.GetTimestamp();
        Log.Started(_logger, MemberId, Epoch, _peers.Length, _options.Mtu, _key is not null);
    }

    /// <summary>
    /// One pass of the sender loop, never waiting: answers NACKs, then sends queued changes while the send window has
    /// room (checked with the sender's own <see cref="WaitForWindow"/> before every piece of <see cref="SteppedPiece"/>
    /// connections; a piece may overrun a window that fills inside it); what does not fit stays queued, coalescing, as
    /// it would while the sender thread waits for the window. Returns the connections sent.
    /// </summary>
    internal int StepSender()
    {
        if (!_stepped || _stop.IsCancellationRequested)
        {
            return 0;
        }

        ProcessRetransmits();
        if (_templatesQueued && WindowHasRoomStepped())
        {
            DrainTemplates();
        }

        int[] taken;
        int count;
        lock (_tableLock)
        {
            count = _pendingCount;
            if (count == 0)
            {
                return 0;
            }

            taken = _pendingSlots[..count];
            _pendingCount = 0;
        }

        int done = 0;
        while (done < count && WindowHasRoomStepped())
        {
            int n = Math.Min(SteppedPiece, count - done);
            Array.Copy(taken, done, _drainingSlots, 0, n);
            Drain(n);
            done += n;
        }

        if (done < count)
        {
            lock (_tableLock)
            {
                // Still marked Pending: back in the queue, ahead of nothing (no other thread queues meanwhile).
                for (int i = done; i < count; i++)
                {
                    if (_pendingCount == _pendingSlots.Length)
                    {
                        Array.Resize(ref _pendingSlots, _pendingSlots.Length * 2);
                    }

                    _pendingSlots[_pendingCount++] = taken[i];
                }
            }

            _counters.WindowStalls++;
        }

        return done;
    }

    /// <summary>True when the send window has room for another datagram (the sender would not wait). Stepped mode only.</summary>
    internal bool SendWindowOpen => _stepped ? WindowHasRoomStepped() : throw new InvalidOperationException("Only a stepped engine is probed.");

    /// <summary>The sender's own window check (<see cref="WaitForWindow"/>), which in stepped mode returns at once and notes a full window.</summary>
    private bool WindowHasRoomStepped()
    {
        _steppedWindowFull = false;
        WaitForWindow();
        return !_steppedWindowFull;
    }
}
