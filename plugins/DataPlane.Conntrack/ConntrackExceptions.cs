using System.Globalization;

namespace ClusterSync.Plugins.Conntrack;

/// <summary>
/// The conntrack data plane was refused access to the kernel's connection table: the process lacks CAP_NET_ADMIN in its
/// network namespace (EPERM/EACCES from socket, bind, SO_RCVBUFFORCE or a multicast join). Thrown by
/// <c>CreateSource</c>/<c>CreateSink</c>; a host treats it as bad configuration of the machine (exit 2). It derives from
/// <see cref="UnauthorizedAccessException"/> so a host that does not reference the plugin can recognise it.
/// </summary>
public sealed class ConntrackAccessException : UnauthorizedAccessException
{
    internal ConntrackAccessException(string purpose, string call, int errno)
        : base(string.Create(CultureInfo.InvariantCulture,
            $"conntrack data plane: {purpose}: {call} was refused ({(errno == 1 ? "EPERM" : "EACCES")}): it needs CAP_NET_ADMIN in its network namespace (run the node as root, or grant the capability: setcap cap_net_admin+ep, or AmbientCapabilities=CAP_NET_ADMIN in its systemd unit)"))
    {
        Errno = errno;
    }

    /// <summary>The errno the kernel answered.</summary>
    public int Errno { get; }
}

/// <summary>The kernel's conntrack netlink interface is not usable here (no nf_conntrack_netlink, not Linux, ...).</summary>
public sealed class ConntrackUnavailableException : InvalidOperationException
{
    internal ConntrackUnavailableException(string message)
        : base(message)
    {
    }
}
