namespace ClusterSync.Connections;

/// <summary>Status bits; the low bits follow Linux conntrack's <c>IPS_*</c> flags.</summary>
[Flags]
public enum ConnectionStatus : ushort
{
    /// <summary>No bits.</summary>
    None = 0,
    /// <summary>An expected (related) connection.</summary>
    Expected = 1 << 0,
    /// <summary>Traffic seen in both directions.</summary>
    SeenReply = 1 << 1,
    /// <summary>Assured: will not be dropped early.</summary>
    Assured = 1 << 2,
    /// <summary>Confirmed by the data plane.</summary>
    Confirmed = 1 << 3,
    /// <summary>Source NAT applies.</summary>
    SourceNat = 1 << 4,
    /// <summary>Destination NAT applies.</summary>
    DestinationNat = 1 << 5,
    /// <summary>TCP sequence adjustment applies.</summary>
    SequenceAdjust = 1 << 6,
    /// <summary>Dying.</summary>
    Dying = 1 << 9,
    /// <summary>Fixed timeout.</summary>
    FixedTimeout = 1 << 10,
    /// <summary>Every bit that travels on the wire (conntrack's bits 0-11; the offload bits stay local).</summary>
    WireMask = 0x0FFF,

    /// <summary>Engine-internal: the connection has been sent to peers at least once (never on the wire).</summary>
    Sent = 1 << 12,
    /// <summary>Engine-internal: a change waits in the sender's queue (never on the wire).</summary>
    Pending = 1 << 13,

    /// <summary>Engine-internal: the connection has been announced to peers (never on the wire).</summary>
    Announced = 1 << 14,
    /// <summary>Engine-internal: the entry is a tombstone left by a destroy (never on the wire).</summary>
    Tombstone = 1 << 15,
}
