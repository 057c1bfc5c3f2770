using System.Runtime.InteropServices;

namespace ClusterSync.Connections;

/// <summary>
/// The state of one connection, as sources submit it, the wire carries it and sinks commit it (120 bytes: the 72 bytes
/// of state every connection has, its conntrack <see cref="Mark"/> and, for a related connection, its
/// <see cref="Master"/>). The engine's table does not store this struct as is: it keeps the mark in its slot and the
/// master, which few connections have, in a side table, so a table of a million entries stays within 128 bytes per
/// entry including the key and the hash-table overhead.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct ConnectionEntry
{
    private ulong _replySrcHi;
    private ulong _replySrcLo;
    private ulong _replyDstHi;
    private ulong _replyDstLo;

    /// <summary>Per-entry version, assigned by the owner; a replica applies an update only when it is newer.</summary>
    public ulong Version;

    /// <summary>Creation time, Unix milliseconds.</summary>
    public long CreatedMs;

    /// <summary>Last update time, Unix milliseconds; the entry expires at <c>UpdatedMs + TimeoutSeconds*1000</c>.</summary>
    public long UpdatedMs;

    private uint _replyPorts;

    /// <summary>Idle timeout in seconds.</summary>
    public uint TimeoutSeconds;

    /// <summary>Conntrack-style status bits (<see cref="ConnectionStatus"/>).</summary>
    public ConnectionStatus Status;

    /// <summary>Protocol state (TCP state machine, UDP/ICMP/other).</summary>
    public ProtocolState State;

    /// <summary>Service class id, as numbered by the node's class catalog.</summary>
    public byte ServiceClass;

    /// <summary>Member id of the owner of the connection.</summary>
    public byte Owner;

    /// <summary>The conntrack mark (<c>CTA_MARK</c>, <c>ct mark</c>); 0 when none is set. Replicated and committed.</summary>
    public uint Mark;

    /// <summary>
    /// For a related connection (an FTP data connection, an ICMP error, ...): the key of its master (control) connection,
    /// its original tuple and zone (<c>CTA_TUPLE_MASTER</c>). <c>default</c> (<see cref="ConnectionKey.Family"/> 0) means
    /// none. A sink commits a related connection after its master (see <c>IReplicaSink.Commit</c>).
    /// </summary>
    public ConnectionKey Master;

    /// <summary>True when <see cref="Master"/> is set.</summary>
    public readonly bool HasMaster => Master.Family != 0;

    /// <summary>The reply-direction tuple (NAT aware).</summary>
    public ReplyTuple Reply
    {
        readonly get => ReplyTuplePacking.Unpack(_replySrcHi, _replySrcLo, _replyDstHi, _replyDstLo, _replyPorts);
        set => ReplyTuplePacking.Pack(value, out _replySrcHi, out _replySrcLo, out _replyDstHi, out _replyDstLo, out _replyPorts);
    }

    /// <summary>Absolute expiry time in Unix milliseconds.</summary>
    public readonly long ExpiresAtMs => UpdatedMs + (TimeoutSeconds * 1000L);

    /// <summary>Field-wise equality of the synchronized state (used by tests and full-sync verification).</summary>
    public readonly bool SameState(in ConnectionEntry other)
        => _replySrcHi == other._replySrcHi && _replySrcLo == other._replySrcLo && _replyDstHi == other._replyDstHi
           && _replyDstLo == other._replyDstLo && _replyPorts == other._replyPorts && Version == other.Version
           && CreatedMs == other.CreatedMs && UpdatedMs == other.UpdatedMs && TimeoutSeconds == other.TimeoutSeconds
           && (Status & ConnectionStatus.WireMask) == (other.Status & ConnectionStatus.WireMask)
           && State == other.State && ServiceClass == other.ServiceClass && Owner == other.Owner
           && Mark == other.Mark && Master.Equals(other.Master);
}
