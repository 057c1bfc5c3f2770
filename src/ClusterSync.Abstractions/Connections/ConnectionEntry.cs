using System.Runtime.InteropServices;

namespace ClusterSync.Connections;

/// <summary>
/// The state held for one connection. Laid out flat (72 bytes) so that a table of a million
/// entries stays within 128 bytes per entry including the key and the hash-table overhead.
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

    /// <summary>The reply-direction tuple (NAT aware).</summary>
    public ReplyTuple Reply
    {
        readonly get => new(_replySrcHi, _replySrcLo, _replyDstHi, _replyDstLo, (ushort)(_replyPorts >> 16), (ushort)_replyPorts);
        set
        {
            _replySrcHi = value.SourceHigh;
            _replySrcLo = value.SourceLow;
            _replyDstHi = value.DestinationHigh;
            _replyDstLo = value.DestinationLow;
            _replyPorts = ((uint)value.SourcePort << 16) | value.DestinationPort;
        }
    }

    /// <summary>Absolute expiry time in Unix milliseconds.</summary>
    public readonly long ExpiresAtMs => UpdatedMs + (TimeoutSeconds * 1000L);

    /// <summary>Field-wise equality of the synchronized state (used by tests and full-sync verification).</summary>
    public readonly bool SameState(in ConnectionEntry other)
        => _replySrcHi == other._replySrcHi && _replySrcLo == other._replySrcLo && _replyDstHi == other._replyDstHi
           && _replyDstLo == other._replyDstLo && _replyPorts == other._replyPorts && Version == other.Version
           && CreatedMs == other.CreatedMs && UpdatedMs == other.UpdatedMs && TimeoutSeconds == other.TimeoutSeconds
           && (Status & ConnectionStatus.WireMask) == (other.Status & ConnectionStatus.WireMask)
           && State == other.State && ServiceClass == other.ServiceClass && Owner == other.Owner;
}
