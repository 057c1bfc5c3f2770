namespace ClusterSync.Core.Tests.Support;

/// <summary>Keys and events used across the tests.</summary>
internal static class TestEvents
{
    public const ulong V4Mapped = 0x0000_FFFF_0000_0000UL;
    public const long BaseMs = 1_795_000_000_000; // late 2026

    public static ConnectionKey V4(ushort sourcePort = 40000, ushort destinationPort = 80, byte protocol = 6, ushort zone = 7, uint source = 0x0A00_0001)
        => ConnectionKey.IPv4(source, 0x0A00_0002, sourcePort, destinationPort, protocol, zone);

    public static ConnectionKey V6(ushort sourcePort = 40000, ushort destinationPort = 443, byte protocol = 6, ushort zone = 3)
        => ConnectionKey.IPv6(0x2001_0DB8_0000_0000UL, 0x0000_0000_0000_0001UL, 0x2001_0DB8_0000_0000UL, 0xABCD_0000_0000_0002UL,
            sourcePort, destinationPort, protocol, zone);

    /// <summary>A reply tuple that is not the key's inverse (SNAT/DNAT applied).</summary>
    public static ReplyTuple NatReply(in ConnectionKey key)
        => key.IsIPv6
            ? new ReplyTuple(0xFD00_0000_0000_0000UL, 0x10UL, 0x2001_0DB8_FFFF_0000UL, 0x99UL, 8443, 61000)
            : new ReplyTuple(0, V4Mapped | 0xC0A8_0001U, 0, V4Mapped | 0xC0A8_00FEU, 8080, 61000);

    public static ConnectionEvent Make(ConnectionEventKind kind, bool v6, bool nat, bool counters, ulong version = 0x1234_5678_9ABCUL)
    {
        var key = v6 ? V6() : V4();
        var e = ConnectionEvent.Create(kind, key, ProtocolState.TcpEstablished, 300, BaseMs);
        e.Entry.Version = version;
        e.Entry.UpdatedMs = BaseMs + 1500;
        e.Entry.Status = ConnectionStatus.SeenReply | ConnectionStatus.Assured | ConnectionStatus.Confirmed | ConnectionStatus.SourceNat;
        e.Entry.ServiceClass = 2;
        e.Entry.Owner = 9;
        if (nat)
        {
            e.Entry.Reply = NatReply(key);
        }

        if (counters)
        {
            e.HasCounters = true;
            e.Counters = new ConnectionCounters(11, 1_100, 22, 2_200_000_000_000);
        }

        return e;
    }
}
