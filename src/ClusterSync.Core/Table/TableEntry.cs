using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ClusterSync.Connections;

namespace ClusterSync.Table;

/// <summary>
/// What the table stores of a <see cref="ConnectionEntry"/>: every field but <see cref="ConnectionEntry.Master"/>,
/// which few connections have and which the table keeps in a side table (<see cref="HasMaster"/> says whether to look
/// there). 76 bytes (4-byte packing), so key + entry + chain link + tag make a 124-byte slot.
/// The members carry the names of <see cref="ConnectionEntry"/>'s so the engine reads and updates both alike.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 4)]
internal struct TableEntry
{
    private ulong _replySrcHi;
    private ulong _replySrcLo;
    private ulong _replyDstHi;
    private ulong _replyDstLo;

    public ulong Version;
    public long CreatedMs;
    public long UpdatedMs;
    private uint _replyPorts;
    public uint TimeoutSeconds;
    public uint Mark;
    public ConnectionStatus Status;
    public ProtocolState State;
    public byte ServiceClass;
    public byte Owner;

    /// <summary>True when the table's side table holds a master for this entry (set only by the table).</summary>
    public bool HasMaster;

    public ReplyTuple Reply
    {
        readonly get => ReplyTuplePacking.Unpack(_replySrcHi, _replySrcLo, _replyDstHi, _replyDstLo, _replyPorts);
        set => ReplyTuplePacking.Pack(value, out _replySrcHi, out _replySrcLo, out _replyDstHi, out _replyDstLo, out _replyPorts);
    }

    public readonly long ExpiresAtMs => UpdatedMs + (TimeoutSeconds * 1000L);

    /// <summary>Copies every field of <paramref name="e"/> but the master (the table sets that with <c>SetMaster</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void CopyFrom(in ConnectionEntry e)
    {
        Reply = e.Reply;
        Version = e.Version;
        CreatedMs = e.CreatedMs;
        UpdatedMs = e.UpdatedMs;
        TimeoutSeconds = e.TimeoutSeconds;
        Mark = e.Mark;
        Status = e.Status;
        State = e.State;
        ServiceClass = e.ServiceClass;
        Owner = e.Owner;
    }

    /// <summary>The entry as the contract carries it, with <paramref name="master"/> (default: none).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly ConnectionEntry ToEntry(in ConnectionKey master)
        => new()
        {
            Reply = Reply,
            Version = Version,
            CreatedMs = CreatedMs,
            UpdatedMs = UpdatedMs,
            TimeoutSeconds = TimeoutSeconds,
            Mark = Mark,
            Status = Status,
            State = State,
            ServiceClass = ServiceClass,
            Owner = Owner,
            Master = master,
        };
}
