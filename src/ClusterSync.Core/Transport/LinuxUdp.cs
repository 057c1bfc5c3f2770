using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace ClusterSync.Transport;

/// <summary>
/// The Linux socket calls and structures the UDP transport's batched paths use (<c>sendmmsg</c>, <c>recvmmsg</c>,
/// UDP GSO and GRO), blittable, for x64 and arm64 (64-bit <c>msghdr</c> layout).
/// </summary>
internal static unsafe partial class LinuxUdp
{
    public const int SolSocket = 1;
    public const int SolUdp = 17;
    public const int UdpSegment = 103; // UDP GSO: Linux 4.18+
    public const int UdpGro = 104;     // UDP GRO: Linux 5.0+
    public const int SoNoCheck = 11;   // turns the UDP checksum off; the kernel then refuses GSO (tests use it)
    public const int MsgWaitForOne = 0x10000;
    public const int MsgDontWait = 0x40;
    public const int MsgTrunc = 0x20;
    public const int AddressSize = 128; // sockaddr_storage
    public const int CmsgHeaderSize = 16; // cmsghdr: size_t len, int level, int type

    /// <summary>Largest number of segments one GSO send may carry (the kernel's UDP_MAX_SEGMENTS is 64, 128 on newer kernels).</summary>
    public const int MaxGsoSegments = 64;

    /// <summary>Largest UDP payload of one GSO send (IPv4: 65535 − 20 − 8; IPv6 allows 8 bytes more).</summary>
    public const int MaxGsoBytes = 65507;

    public const int Eintr = 4;
    public const int Eio = 5;
    public const int Eagain = 11;
    public const int Einval = 22;
    public const int Emsgsize = 90;
    public const int Enoprotoopt = 92;
    public const int Eopnotsupp = 95;
    public const int Enosys = 38;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }

    /// <summary>x64 and arm64 Linux: the layouts above hold there.</summary>
    public static bool Supported => OperatingSystem.IsLinux()
        && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int recvmmsg(int fd, MMsgHdr* messages, uint count, int flags, void* timeout);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int sendmmsg(int fd, MMsgHdr* messages, uint count, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setsockopt(int fd, int level, int name, void* value, uint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getsockopt(int fd, int level, int name, void* value, uint* length);

    /// <summary>Sets an integer socket option; 0 on success, else the errno.</summary>
    public static int SetInt(Socket socket, int level, int name, int value)
    {
        bool added = false;
        try
        {
            socket.SafeHandle.DangerousAddRef(ref added);
            int rc = setsockopt((int)socket.SafeHandle.DangerousGetHandle(), level, name, &value, sizeof(int));
            return rc == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
        finally
        {
            if (added)
            {
                socket.SafeHandle.DangerousRelease();
            }
        }
    }

    /// <summary>Reads an integer socket option; 0 on success, else the errno.</summary>
    public static int GetInt(Socket socket, int level, int name, out int value)
    {
        bool added = false;
        int v = 0;
        uint length = sizeof(int);
        try
        {
            socket.SafeHandle.DangerousAddRef(ref added);
            int rc = getsockopt((int)socket.SafeHandle.DangerousGetHandle(), level, name, &v, &length);
            value = v;
            return rc == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
        finally
        {
            if (added)
            {
                socket.SafeHandle.DangerousRelease();
            }
        }
    }
}
