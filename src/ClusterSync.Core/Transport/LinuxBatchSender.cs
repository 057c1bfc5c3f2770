using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using static ClusterSync.Transport.LinuxUdp;

namespace ClusterSync.Transport;

/// <summary>
/// Sends many datagrams to one peer with one <c>sendmmsg</c> call, and, where the kernel has UDP GSO
/// (<c>UDP_SEGMENT</c>, Linux 4.18+), each run of equal-length datagrams (the last of a run may be shorter) as one
/// GSO message: the kernel carries the run through its stack as one packet and cuts it into the original datagrams
/// only at the device (or delivers it whole to a receiver that enabled UDP GRO). Every datagram keeps its own bytes
/// and its own AEAD tag; the wire sees exactly the datagrams a one-by-one send would have sent, in the same order.
/// Where the kernel refuses GSO at send time (no checksum offload on the egress device, a path MTU below the
/// segment, checksums off), the refused datagrams are resent without it and GSO stays off for this socket.
/// Datagrams are copied into native memory first, so the caller's buffers are free when the call returns.
/// Single sender only (the engine's sender thread).
/// </summary>
internal sealed unsafe class LinuxBatchSender : IDisposable
{
    /// <summary>Largest number of messages (each one datagram, or one GSO run) per system call.</summary>
    public const int MaxMessages = 64;

    private const int ControlSize = 24; // CMSG_SPACE(sizeof(ushort))

    private readonly Socket _socket;
    private readonly int _capacity;
    private readonly byte* _buffer;
    private readonly byte* _name;
    private readonly byte* _control;
    private readonly IoVec* _iov;
    private readonly MMsgHdr* _messages;
    private readonly int[] _firstDatagram = new int[MaxMessages];
    private readonly int[] _segments = new int[MaxMessages];
    private volatile bool _gso;
    private int _state; // Idle, Busy (a send is running), Closed (Dispose called; memory freed by whoever ends last)
    private const int Idle = 0;
    private const int Busy = 1;
    private const int Closed = 2;
    private long _calls;
    private long _datagrams;
    private long _gsoMessages;
    private long _errors;
    private int _gsoRefusedErrno;

    private LinuxBatchSender(Socket socket, int maxDatagramSize, bool gso)
    {
        _socket = socket;
        _gso = gso;
        // Room for a full GSO message, and for at least MaxMessages datagrams of the largest size when they are small.
        _capacity = Math.Max(MaxGsoBytes + maxDatagramSize, Math.Min(MaxMessages * maxDatagramSize, 1 << 20));
        _buffer = (byte*)NativeMemory.Alloc((nuint)_capacity);
        _name = (byte*)NativeMemory.AllocZeroed(AddressSize);
        _control = (byte*)NativeMemory.AllocZeroed((nuint)(MaxMessages * ControlSize));
        _iov = (IoVec*)NativeMemory.AllocZeroed((nuint)(MaxMessages * sizeof(IoVec)));
        _messages = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(MaxMessages * sizeof(MMsgHdr)));
    }

    /// <summary>
    /// A batch sender for <paramref name="socket"/>, or null where <c>sendmmsg</c> is not available (not Linux x64/arm64).
    /// GSO is used when <paramref name="gso"/> and the kernel knows <c>UDP_SEGMENT</c>.
    /// </summary>
    public static LinuxBatchSender? TryCreate(Socket socket, int maxDatagramSize, bool gso)
    {
        if (!Supported)
        {
            return null;
        }

        gso = gso && GetInt(socket, SolUdp, UdpSegment, out _) == 0; // ENOPROTOOPT on a kernel without UDP GSO
        return new LinuxBatchSender(socket, maxDatagramSize, gso);
    }

    /// <summary>UDP GSO is in use (false: the kernel lacks it, or refused it once).</summary>
    public bool Gso => _gso;

    /// <summary>The errno with which the kernel refused GSO (0: never refused).</summary>
    public int GsoRefusedErrno => Volatile.Read(ref _gsoRefusedErrno);

    /// <summary>System calls made.</summary>
    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>Datagrams handed to the kernel.</summary>
    public long Datagrams => Interlocked.Read(ref _datagrams);

    /// <summary>Messages sent as GSO runs (two or more datagrams in one packet through the stack).</summary>
    public long GsoMessages => Interlocked.Read(ref _gsoMessages);

    /// <summary>Datagrams lost to a send error (full buffer, unreachable): the protocol repairs them.</summary>
    public long Errors => Interlocked.Read(ref _errors);

    /// <summary>
    /// Sends <paramref name="datagrams"/> to <paramref name="peer"/>, in order. False only when the socket is closed.
    /// Datagrams the kernel refuses are counted in <see cref="Errors"/> (as a lost datagram: the protocol repairs it).
    /// </summary>
    public bool Send(ReadOnlySpan<ReadOnlyMemory<byte>> datagrams, SocketAddress peer)
    {
        if (Interlocked.CompareExchange(ref _state, Busy, Idle) != Idle)
        {
            return false;
        }

        try
        {
            var name = peer.Buffer.Span[..peer.Size];
            name.CopyTo(new Span<byte>(_name, AddressSize));
            int i = 0;
            while (i < datagrams.Length)
            {
                int sent = SendSome(datagrams, i, (uint)name.Length);
                if (sent < 0)
                {
                    return false;
                }

                i = sent;
            }

            return true;
        }
        finally
        {
            if (Interlocked.CompareExchange(ref _state, Idle, Busy) == Closed)
            {
                Free();
            }
        }
    }

    /// <summary>Builds up to <see cref="MaxMessages"/> messages from datagram <paramref name="first"/> on and sends them; returns the next datagram to send, or -1 (closed).</summary>
    private int SendSome(ReadOnlySpan<ReadOnlyMemory<byte>> datagrams, int first, uint nameLength)
    {
        int i = first;
        int m = 0;
        int offset = 0;
        bool gso = _gso;
        while (i < datagrams.Length && m < MaxMessages)
        {
            var d = datagrams[i].Span;
            if (offset + d.Length > _capacity)
            {
                if (m > 0)
                {
                    break; // the buffer is full: send what it holds, then go on
                }

                Interlocked.Increment(ref _errors); // larger than any UDP datagram: the kernel would refuse it too
                i++;
                continue;
            }

            int start = offset;
            int segment = d.Length;
            d.CopyTo(new Span<byte>(_buffer + offset, d.Length));
            offset += d.Length;
            _firstDatagram[m] = i;
            int segments = 1;
            i++;
            if (gso && segment > 0)
            {
                // A run: equal lengths, the last one may be shorter; within the kernel's limits per GSO packet.
                while (i < datagrams.Length && segments < MaxGsoSegments)
                {
                    var next = datagrams[i].Span;
                    if (next.Length > segment || next.Length == 0 || offset - start + next.Length > MaxGsoBytes || offset + next.Length > _capacity)
                    {
                        break;
                    }

                    next.CopyTo(new Span<byte>(_buffer + offset, next.Length));
                    offset += next.Length;
                    segments++;
                    i++;
                    if (next.Length < segment)
                    {
                        break;
                    }
                }
            }

            _segments[m] = segments;
            _iov[m].Base = _buffer + start;
            _iov[m].Length = (nuint)(offset - start);
            ref var h = ref _messages[m].Header;
            h.Name = _name;
            h.NameLength = nameLength;
            h.Iov = _iov + m;
            h.IovLength = 1;
            h.Flags = 0;
            _messages[m].Length = 0;
            if (segments > 1)
            {
                byte* c = _control + (m * ControlSize);
                *(nuint*)c = CmsgHeaderSize + sizeof(ushort);
                *(int*)(c + 8) = SolUdp;
                *(int*)(c + 12) = UdpSegment;
                *(ushort*)(c + CmsgHeaderSize) = (ushort)segment;
                h.Control = c;
                h.ControlLength = ControlSize;
            }
            else
            {
                h.Control = null;
                h.ControlLength = 0;
            }

            m++;
        }

        int done = 0;
        while (done < m)
        {
            int got;
            int errno = 0;
            bool added = false;
            var handle = _socket.SafeHandle;
            try
            {
                handle.DangerousAddRef(ref added);
                got = sendmmsg((int)handle.DangerousGetHandle(), _messages + done, (uint)(m - done), 0);
                if (got < 0)
                {
                    errno = Marshal.GetLastPInvokeError();
                }
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

            Interlocked.Increment(ref _calls);
            if (got > 0)
            {
                for (int k = done; k < done + got; k++)
                {
                    Interlocked.Add(ref _datagrams, _segments[k]);
                    if (_segments[k] > 1)
                    {
                        Interlocked.Increment(ref _gsoMessages);
                    }
                }

                done += got;
                continue;
            }

            if (errno == Eintr)
            {
                continue;
            }

            if (_segments[done] > 1 && errno is Eio or Einval or Emsgsize or Enoprotoopt or Eopnotsupp)
            {
                // The kernel refused GSO for this socket or path: nothing of this message left. Resend it and the rest
                // without GSO, and keep GSO off from now on.
                _gso = false;
                Volatile.Write(ref _gsoRefusedErrno, errno);
                return _firstDatagram[done];
            }

            if (errno == Enosys)
            {
                return -1; // no sendmmsg at all: cannot happen on a kernel with recvmmsg; treat as closed
            }

            // A full buffer, an unreachable peer: this message's datagrams are lost (the protocol repairs them).
            Interlocked.Add(ref _errors, _segments[done]);
            done++;
        }

        return i;
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
        NativeMemory.Free(_buffer);
        NativeMemory.Free(_name);
        NativeMemory.Free(_control);
        NativeMemory.Free(_iov);
        NativeMemory.Free(_messages);
    }
}
