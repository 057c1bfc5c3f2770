using System.Runtime.InteropServices;

namespace ClusterSync.Plugins.Conntrack.Netlink;

/// <summary>
/// A <c>NETLINK_NETFILTER</c> socket of the network namespace the creating thread is in. The runtime refuses
/// <c>AddressFamily</c> 16, so the descriptor comes from <c>socket(2)</c> (P/Invoke: socket, bind, getsockname,
/// setsockopt, recv, send, close) and is held by a <see cref="SafeHandle"/> so a close never races a call in progress.
/// Receive and send return the byte count or a negative errno; nothing here throws on the I/O path.
/// </summary>
internal sealed partial class NetlinkSocket : IDisposable
{
    private const int SockRaw = 3;
    private const int SockCloexec = 0x80000;
    private readonly Fd _fd;

    private NetlinkSocket(Fd fd, uint portId)
    {
        _fd = fd;
        PortId = portId;
    }

    /// <summary>The socket's netlink port id (nl_pid): events its requests cause carry it as their nlmsg_pid.</summary>
    public uint PortId { get; }

    /// <summary>
    /// Opens and binds a socket (port id chosen by the kernel). Errors: <see cref="ConntrackAccessException"/> for
    /// EPERM/EACCES, <see cref="ConntrackUnavailableException"/> for anything else.
    /// </summary>
    public static NetlinkSocket Open(string purpose)
    {
        int fd = Native.Socket(Nl.AfNetlink, SockRaw | SockCloexec, Nl.NetlinkNetfilter);
        if (fd < 0)
        {
            throw Failure(purpose, "socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER)", Marshal.GetLastPInvokeError());
        }

        var handle = new Fd(fd);
        try
        {
            var address = new SockaddrNl { Family = Nl.AfNetlink };
            if (Native.Bind(fd, ref address, SockaddrNl.Size) != 0)
            {
                throw Failure(purpose, "bind", Marshal.GetLastPInvokeError());
            }

            int length = SockaddrNl.Size;
            if (Native.GetSockName(fd, ref address, ref length) != 0)
            {
                throw Failure(purpose, "getsockname", Marshal.GetLastPInvokeError());
            }

            return new NetlinkSocket(handle, address.PortId);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>SO_RCVBUFFORCE (needs CAP_NET_ADMIN: this is also the plugin's permission probe); returns the size in effect.</summary>
    public int ForceReceiveBuffer(int bytes, string purpose) => ForceBuffer(Nl.SoRcvbufForce, Nl.SoRcvbuf, bytes, purpose);

    public int ForceSendBuffer(int bytes, string purpose) => ForceBuffer(Nl.SoSndbufForce, Nl.SoSndbuf, bytes, purpose);

    /// <summary>Joins a multicast group (NETLINK_ADD_MEMBERSHIP); needs CAP_NET_ADMIN for netfilter groups.</summary>
    public void JoinGroup(uint group, string purpose) => SetInt(Nl.SolNetlink, Nl.NetlinkAddMembership, (int)group, purpose, "NETLINK_ADD_MEMBERSHIP");

    /// <summary>NETLINK_CAP_ACK: error replies carry the request's header only, not its whole payload.</summary>
    public void CapAcks(string purpose) => SetInt(Nl.SolNetlink, Nl.NetlinkCapAck, 1, purpose, "NETLINK_CAP_ACK");

    /// <summary>SO_RCVTIMEO: a blocking receive returns -EAGAIN after <paramref name="timeout"/> (so a reader can notice a stop).</summary>
    public void SetReceiveTimeout(TimeSpan timeout, string purpose)
    {
        var tv = new Timeval { Seconds = (long)timeout.TotalSeconds, Microseconds = timeout.Microseconds + (timeout.Milliseconds * 1000L) };
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added);
            if (Native.SetSockOptTimeval(_fd.DangerousGetHandle().ToInt32(), Nl.SolSocket, Nl.SoRcvtimeo, ref tv, Marshal.SizeOf<Timeval>()) != 0)
            {
                throw Failure(purpose, "setsockopt(SO_RCVTIMEO)", Marshal.GetLastPInvokeError());
            }
        }
        finally
        {
            if (added)
            {
                _fd.DangerousRelease();
            }
        }
    }

    /// <summary>Receives one datagram (a batch of netlink messages): its length, or a negative errno (-EAGAIN on timeout, -ENOBUFS on overrun).</summary>
    public unsafe int Receive(Span<byte> buffer, bool dontWait = false)
    {
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added);
            fixed (byte* p = buffer)
            {
                nint n = Native.Recv(_fd.DangerousGetHandle().ToInt32(), p, buffer.Length, dontWait ? Nl.MsgDontWait : 0);
                return n >= 0 ? (int)n : -Marshal.GetLastPInvokeError();
            }
        }
        catch (ObjectDisposedException)
        {
            return -9; // EBADF: closed
        }
        finally
        {
            if (added)
            {
                _fd.DangerousRelease();
            }
        }
    }

    /// <summary>Sends <paramref name="messages"/> (one or many netlink messages) to the kernel in one call: bytes sent or a negative errno.</summary>
    public unsafe int Send(ReadOnlySpan<byte> messages)
    {
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added);
            fixed (byte* p = messages)
            {
                while (true)
                {
                    nint n = Native.Send(_fd.DangerousGetHandle().ToInt32(), p, messages.Length, 0);
                    if (n >= 0)
                    {
                        return (int)n;
                    }

                    int errno = Marshal.GetLastPInvokeError();
                    if (errno != Nl.EINTR)
                    {
                        return -errno;
                    }
                }
            }
        }
        catch (ObjectDisposedException)
        {
            return -9;
        }
        finally
        {
            if (added)
            {
                _fd.DangerousRelease();
            }
        }
    }

    public void Dispose() => _fd.Dispose();

    private int ForceBuffer(int forceOption, int readOption, int bytes, string purpose)
    {
        SetInt(Nl.SolSocket, forceOption, bytes, purpose, forceOption == Nl.SoRcvbufForce ? "SO_RCVBUFFORCE" : "SO_SNDBUFFORCE");
        int value = 0;
        int length = sizeof(int);
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added);
            return Native.GetSockOpt(_fd.DangerousGetHandle().ToInt32(), Nl.SolSocket, readOption, ref value, ref length) == 0 ? value : bytes;
        }
        finally
        {
            if (added)
            {
                _fd.DangerousRelease();
            }
        }
    }

    private void SetInt(int level, int option, int value, string purpose, string name)
    {
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added);
            if (Native.SetSockOpt(_fd.DangerousGetHandle().ToInt32(), level, option, ref value, sizeof(int)) != 0)
            {
                throw Failure(purpose, $"setsockopt({name})", Marshal.GetLastPInvokeError());
            }
        }
        finally
        {
            if (added)
            {
                _fd.DangerousRelease();
            }
        }
    }

    private static Exception Failure(string purpose, string call, int errno)
        => errno is Nl.EPERM or Nl.EACCES
            ? new ConntrackAccessException(purpose, call, errno)
            : new ConntrackUnavailableException($"conntrack data plane: {purpose}: {call} failed with {Nl.ErrnoName(errno).ToUpperInvariant()} ({errno})");

    [StructLayout(LayoutKind.Sequential)]
    private struct SockaddrNl
    {
        public const int Size = 12;
        public ushort Family;
        public ushort Pad;
        public uint PortId;
        public uint Groups;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timeval
    {
        public long Seconds;
        public long Microseconds;
    }

    private sealed class Fd : SafeHandle
    {
        public Fd(int fd)
            : base(-1, ownsHandle: true) => SetHandle(fd);

        public override bool IsInvalid => handle.ToInt64() < 0;

        protected override bool ReleaseHandle() => Native.Close(handle.ToInt32()) == 0;
    }

    private static unsafe partial class Native
    {
        [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
        public static partial int Socket(int domain, int type, int protocol);

        [LibraryImport("libc", EntryPoint = "bind", SetLastError = true)]
        public static partial int Bind(int fd, ref SockaddrNl address, int length);

        [LibraryImport("libc", EntryPoint = "getsockname", SetLastError = true)]
        public static partial int GetSockName(int fd, ref SockaddrNl address, ref int length);

        [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
        public static partial int SetSockOpt(int fd, int level, int option, ref int value, int length);

        [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
        public static partial int SetSockOptTimeval(int fd, int level, int option, ref Timeval value, int length);

        [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
        public static partial int GetSockOpt(int fd, int level, int option, ref int value, ref int length);

        [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
        public static partial nint Recv(int fd, byte* buffer, nint length, int flags);

        [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
        public static partial nint Send(int fd, byte* buffer, nint length, int flags);

        [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
        public static partial int Close(int fd);
    }
}
