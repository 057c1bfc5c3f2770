using System.Net.Sockets;
using System.Runtime.InteropServices;
using static ClusterSync.Transport.LinuxUdp;

namespace ClusterSync.Transport;

/// <summary>
/// Receives up to a batch of datagrams per system call with Linux <c>recvmmsg</c> (blocking for the first,
/// taking whatever else is queued), then hands them out one at a time. The kernel's per-call cost dominates UDP
/// on loopback, so this roughly halves the receiver's system time under load. Where the kernel has UDP GRO
/// (<c>UDP_GRO</c>, Linux 5.0+) the socket asks for it: a run of equal-length datagrams (a peer's GSO send, or
/// datagrams a NIC coalesced) then arrives as one buffer with its segment size, and is cut here into the original
/// datagrams, each handed out (and authenticated by the engine) on its own. Single reader only.
/// </summary>
internal sealed unsafe class LinuxBatchReceiver : IDisposable
{
    public const int Batch = 32;
    public const int GroBatch = 16;
    private const int GroSlotSize = 65536; // a GRO buffer holds up to 64 KiB of coalesced datagrams
    private const int ControlSize = 64;

    private readonly Socket _socket;
    private readonly int _batch;
    private readonly int _slotSize;
    private readonly int _limit; // the slot size asked for: a larger datagram counts as truncated, as without GRO
    private readonly byte* _buffers;
    private readonly byte* _addresses;
    private readonly byte* _control;
    private readonly IoVec* _iov;
    private readonly MMsgHdr* _messages;
    private readonly int[] _segment; // per message: segment size (0: one datagram), -1: dropped (truncated)
    private readonly int[] _lengths; // per message: bytes received (a managed copy, for HasBuffered)
    private int _count;
    private int _next;
    private int _offset; // within message _next, the next segment's start
    private int _state; // Idle, Busy (a Receive is running), Closed (Dispose called; memory freed by whoever ends last)
    private const int Idle = 0;
    private const int Busy = 1;
    private const int Closed = 2;
    private long _truncated;
    private long _coalesced;
    private readonly long _spinTicks = SpinTicks();
    private bool _active; // the last call returned datagrams: the peer is sending, so a poll before blocking may pay

    private LinuxBatchReceiver(Socket socket, int slotSize, bool gro)
    {
        _socket = socket;
        Gro = gro;
        _batch = gro ? GroBatch : Batch;
        _limit = slotSize;
        _slotSize = gro ? Math.Max(GroSlotSize, slotSize) : slotSize;
        _buffers = (byte*)NativeMemory.Alloc((nuint)((long)_batch * _slotSize));
        _addresses = (byte*)NativeMemory.AllocZeroed((nuint)(_batch * AddressSize));
        _control = (byte*)NativeMemory.AllocZeroed((nuint)(_batch * ControlSize));
        _iov = (IoVec*)NativeMemory.AllocZeroed((nuint)(_batch * sizeof(IoVec)));
        _messages = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(_batch * sizeof(MMsgHdr)));
        _segment = new int[_batch];
        _lengths = new int[_batch];
    }

    /// <summary>
    /// A batch receiver for <paramref name="socket"/>, or null where recvmmsg is not available. With
    /// <paramref name="gro"/> it turns UDP GRO on where the kernel has it.
    /// </summary>
    public static LinuxBatchReceiver? TryCreate(Socket socket, int slotSize, bool gro)
    {
        if (!Supported)
        {
            return null;
        }

        gro = gro && SetInt(socket, SolUdp, UdpGro, 1) == 0; // ENOPROTOOPT on a kernel without UDP GRO
        return new LinuxBatchReceiver(socket, slotSize, gro);
    }

    /// <summary>UDP GRO is on for the socket: coalesced runs arrive as one buffer and are cut here.</summary>
    public bool Gro { get; }

    /// <summary>
    /// True when the last call's batch still holds a datagram (or a coalesced buffer's next segment), so the next
    /// <see cref="Receive"/> returns without a system call. Receiver thread only.
    /// </summary>
    public bool HasBuffered
    {
        get
        {
            // Managed copies only (the native batch may be freed by Dispose on another thread meanwhile). Counts only
            // what Receive would hand out: not a truncated, oversize or empty datagram (after those it would block).
            for (int i = _next; i < _count; i++)
            {
                int segment = _segment[i];
                int total = _lengths[i];
                if (segment < 0 || total == 0)
                {
                    continue;
                }

                int start = i == _next ? _offset : 0;
                int length = segment == 0 ? total : Math.Min(segment, total - start);
                if (length <= _limit)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>Datagrams larger than a slot, cut by the kernel (MSG_TRUNC) and dropped here.</summary>
    public long Truncated => Interlocked.Read(ref _truncated);

    /// <summary>Datagrams that arrived inside a coalesced (GRO) buffer.</summary>
    public long Coalesced => Interlocked.Read(ref _coalesced);

    /// <summary>
    /// Copies the next datagram into <paramref name="destination"/>; returns its length and its source address,
    /// 0 after a receive timeout, or -1 when the socket failed (closed).
    /// </summary>
    public int Receive(Span<byte> destination, out ReadOnlySpan<byte> source)
    {
        source = default;
        if (Interlocked.CompareExchange(ref _state, Busy, Idle) != Idle)
        {
            return -1;
        }

        try
        {
            return ReceiveCore(destination, out source);
        }
        finally
        {
            if (Interlocked.CompareExchange(ref _state, Idle, Busy) == Closed)
            {
                Free();
            }
        }
    }

    private int ReceiveCore(Span<byte> destination, out ReadOnlySpan<byte> source)
    {
        while (true)
        {
            while (_next >= _count)
            {
                int n = Fill();
                if (n <= 0)
                {
                    source = default;
                    return n;
                }
            }

            int i = _next;
            int segment = _segment[i];
            int total = (int)_messages[i].Length;
            if (segment < 0)
            {
                _next++;
                _offset = 0;
                continue; // truncated: dropped (counted in Fill)
            }

            int start = _offset;
            int length = segment == 0 ? total : Math.Min(segment, total - start);
            if (segment == 0 || start + length >= total)
            {
                _next++;
                _offset = 0;
            }
            else
            {
                _offset = start + length;
            }

            if (length > _limit)
            {
                Interlocked.Increment(ref _truncated); // larger than the channel carries, as the kernel would have cut it
                continue;
            }

            int copy = Math.Min(length, destination.Length);
            new ReadOnlySpan<byte>(_buffers + ((long)i * _slotSize) + start, copy).CopyTo(destination);
            source = new ReadOnlySpan<byte>(_addresses + ((long)i * AddressSize), (int)_messages[i].Header.NameLength);
            return copy;
        }
    }

    private int Fill()
    {
        _count = 0;
        _next = 0;
        _offset = 0;
        for (int i = 0; i < _batch; i++)
        {
            _iov[i].Base = _buffers + ((long)i * _slotSize);
            _iov[i].Length = (nuint)_slotSize;
            ref var h = ref _messages[i].Header;
            h.Name = _addresses + ((long)i * AddressSize);
            h.NameLength = AddressSize;
            h.Iov = _iov + i;
            h.IovLength = 1;
            h.Control = Gro ? _control + (i * ControlSize) : null;
            h.ControlLength = Gro ? (nuint)ControlSize : 0;
            h.Flags = 0;
            _messages[i].Length = 0;
        }

        int got = 0;
        if (_active && _spinTicks > 0)
        {
            // A bounded poll without blocking first (CLUSTERSYNC_RECEIVE_SPIN_US): a datagram arriving meanwhile is taken
            // without a sleep and a wake-up through the scheduler. Only while the peer is sending: an idle socket blocks at once.
            long until = System.Diagnostics.Stopwatch.GetTimestamp() + _spinTicks;
            do
            {
                got = Call(MsgWaitForOne | MsgDontWait);
            }
            while (got == 0 && System.Diagnostics.Stopwatch.GetTimestamp() < until);
        }

        if (got == 0)
        {
            got = Call(MsgWaitForOne);
        }

        _active = got > 0;
        if (got <= 0)
        {
            return got;
        }

        for (int i = 0; i < got; i++)
        {
            _lengths[i] = (int)_messages[i].Length;
            ref var h = ref _messages[i].Header;
            if ((h.Flags & MsgTrunc) != 0)
            {
                // Larger than a slot: cannot be valid (with GRO on, a slot holds any UDP payload). Dropped, counted.
                Interlocked.Increment(ref _truncated);
                _segment[i] = -1;
                continue;
            }

            int segment = Gro ? SegmentSize(ref h) : 0;
            if (segment > 0 && segment < (int)_messages[i].Length)
            {
                Interlocked.Add(ref _coalesced, ((int)_messages[i].Length + segment - 1) / segment);
                _segment[i] = segment;
            }
            else
            {
                _segment[i] = 0; // one datagram (an empty one included: the caller counts it)
            }
        }

        _count = got;
        return got == 0 ? 0 : got;
    }

    /// <summary>One recvmmsg over the batch: the number of messages, 0 (timeout, would block, interrupted) or -1 (closed).</summary>
    private int Call(int flags)
    {
        var handle = _socket.SafeHandle;
        bool added = false;
        try
        {
            // Hold a reference so the descriptor cannot be closed and reused while the call runs.
            handle.DangerousAddRef(ref added);
            int got = recvmmsg((int)handle.DangerousGetHandle(), _messages, (uint)_batch, flags, null);
            if (got < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                return errno is Eagain or Eintr ? 0 : -1;
            }

            return got;
        }
        catch (ObjectDisposedException)
        {
            return -1;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary><c>CLUSTERSYNC_RECEIVE_SPIN_US</c> (0 to 10,000 µs; default 0: no poll) as Stopwatch ticks.</summary>
    private static long SpinTicks()
        => int.TryParse(Environment.GetEnvironmentVariable("CLUSTERSYNC_RECEIVE_SPIN_US"), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int us) && us is > 0 and <= 10_000
            ? us * System.Diagnostics.Stopwatch.Frequency / 1_000_000
            : 0;

    /// <summary>The UDP_GRO control message's segment size, or 0 when the kernel delivered a single datagram.</summary>
    private static int SegmentSize(ref MsgHdr h)
    {
        byte* c = (byte*)h.Control;
        long left = (long)h.ControlLength;
        while (left >= CmsgHeaderSize)
        {
            long length = (long)*(nuint*)c;
            if (length < CmsgHeaderSize || length > left)
            {
                return 0;
            }

            if (*(int*)(c + 8) == SolUdp && *(int*)(c + 12) == UdpGro && length >= CmsgHeaderSize + sizeof(int))
            {
                return *(int*)(c + CmsgHeaderSize);
            }

            long step = (length + 7) & ~7L;
            c += step;
            left -= step;
        }

        return 0;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _state, Closed) == Idle)
        {
            Free();
        }
    }

    private void Free()
    {
        NativeMemory.Free(_buffers);
        NativeMemory.Free(_addresses);
        NativeMemory.Free(_control);
        NativeMemory.Free(_iov);
        NativeMemory.Free(_messages);
    }
}
