namespace ClusterSync.Core.Tests.Engine;

/// <summary>Builds engines on <see cref="CaptureChannel"/>s and a shared fake clock, and decodes what they send.</summary>
internal static class EngineKit
{
    public static readonly DateTimeOffset Start = new(2026, 11, 25, 9, 30, 0, TimeSpan.Zero);

    public const string Full = "full";
    public const string ShortLived = "short-lived";
    public const string None = "none";

    /// <summary>tcp/80 is short-lived (delayed 3 s), udp/53 is never synced, tcp/443 and everything else is full.</summary>
    public static PolicyOptions TestPolicy() => new()
    {
        DefaultClass = "default",
        Classes =
        [
            new ServiceClassOptions { Name = Full, Policy = "full" },
            new ServiceClassOptions { Name = ShortLived, Policy = "delayed", DelaySeconds = 3 },
            new ServiceClassOptions { Name = None, Policy = "none" },
            new ServiceClassOptions { Name = "default", Policy = "full" },
        ],
        Rules =
        [
            new ClassRuleOptions { Protocol = "tcp", Ports = "80", Class = ShortLived },
            new ClassRuleOptions { Protocol = "udp", Ports = "53", Class = None },
            new ClassRuleOptions { Protocol = "tcp", Ports = "443", Class = Full },
        ],
    };

    public static (SyncEngine Engine, CaptureChannel Channel) Create(byte member, byte peer, ClusterKey? key, TimeProvider time,
        bool insecure = false, PolicyOptions? policy = null, ulong epoch = 0)
    {
        var channel = new CaptureChannel(1);
        var options = Options(member, peer) with { Insecure = insecure, Epoch = epoch, Policy = policy ?? TestPolicy() };
        return (new SyncEngine(options, channel, key, time), channel);
    }

    /// <summary>Valid options of a small engine (1,024 connections, a 16-datagram window) for member <paramref name="member"/> and one peer.</summary>
    public static SyncEngineOptions Options(byte member = 1, byte peer = 2) => new()
    {
        MemberId = member,
        PeerMemberIds = [peer],
        TableCapacity = 1024,
        ResendBufferDatagrams = 64,
        SendWindowDatagrams = 16,
        AckEveryDatagrams = 8,
        Policy = TestPolicy(),
    };

    /// <summary>Feeds a copy of <paramref name="datagram"/> to <paramref name="to"/>.</summary>
    public static DropReason Feed(SyncEngine to, byte[] datagram) => to.HandleDatagram(((byte[])datagram.Clone()).AsSpan());

    /// <summary>Submits <paramref name="change"/> to <paramref name="engine"/> and waits for the data datagram that carries it.</summary>
    public static byte[] SubmitAndCapture(SyncEngine engine, CaptureChannel channel, in ConnectionEvent change)
    {
        int before = channel.DataTo(0).Count;
        engine.Submit(change);
        return channel.WaitForData(before + 1)[before];
    }

    public static ConnectionKey Tcp(ushort destinationPort, ushort sourcePort = 40000, uint source = 0x0A00_0001)
        => ConnectionKey.IPv4(source, 0xC0A8_0101, sourcePort, destinationPort, 6);

    public static ConnectionKey Udp(ushort destinationPort, ushort sourcePort = 40000)
        => ConnectionKey.IPv4(0x0A00_0001, 0xC0A8_0101, sourcePort, destinationPort, 17);

    public static ConnectionEvent New(in ConnectionKey key, uint timeoutSeconds = 3600, ProtocolState state = ProtocolState.TcpSynSent)
    {
        var e = ConnectionEvent.Create(ConnectionEventKind.New, key, state, timeoutSeconds, 0);
        e.Entry.Status = ConnectionStatus.Confirmed;
        return e;
    }

    public static ConnectionEvent Update(in ConnectionKey key, ProtocolState state, uint timeoutSeconds = 3600)
    {
        var e = ConnectionEvent.Create(ConnectionEventKind.Update, key, state, timeoutSeconds, 0);
        e.Entry.Status = ConnectionStatus.Confirmed | ConnectionStatus.SeenReply | ConnectionStatus.Assured;
        return e;
    }

    public static ConnectionEvent Destroy(in ConnectionKey key) => new() { Kind = ConnectionEventKind.Destroy, Key = key };

    /// <summary>Opens a captured data datagram with the sender's key and returns its records.</summary>
    public static List<ConnectionEvent> Decode(byte[] datagram, ClusterKey? key, ushort sender, ulong epoch)
    {
        var (header, opened) = Open(datagram, key, sender, epoch);
        Assert.Equal(MessageType.Data, header.Type);
        Assert.True(opened is { Length: >= 2 }, "datagram did not authenticate");
        var body = opened.AsSpan();
        int count = BinaryPrimitives.ReadUInt16BigEndian(body);
        var records = new List<ConnectionEvent>();
        var rest = body[2..];
        for (int i = 0; i < count; i++)
        {
            int n = RecordCodec.TryRead(rest, out var r);
            Assert.True(n > 0, $"record {i} malformed");
            records.Add(r);
            rest = rest[n..];
        }

        Assert.Equal(0, rest.Length);
        return records;
    }

    /// <summary>Opens a copy of a captured datagram with the sender's key; its header and its body (null when it did not authenticate).</summary>
    public static (PacketHeader Header, byte[]? Body) Open(byte[] datagram, ClusterKey? key, ushort sender, ulong epoch)
    {
        var copy = (byte[])datagram.Clone();
        Assert.Equal(DropReason.None, PacketHeader.TryRead(copy, out var header));
        using var opener = PacketProtection.Create(key, sender, epoch);
        int length = opener.Open(copy);
        return (header, length < 0 ? null : copy.AsSpan(PacketHeader.Size, length).ToArray());
    }

    /// <summary>An epoch for datagrams built by hand (a fixed Unix time in milliseconds, late 2026).</summary>
    public const ulong HandBuiltEpoch = 1_795_000_000_000;

    /// <summary>A datagram built by hand: the header, then <paramref name="body"/> sealed with <paramref name="key"/> as <paramref name="sender"/> would.</summary>
    public static byte[] Seal(ClusterKey key, MessageType type, ushort sender, ulong epoch, ulong sequence, byte[] body)
    {
        var datagram = new byte[PacketHeader.Size + body.Length + PacketProtection.TagSize];
        new PacketHeader(type, sender, HeaderFlags.Sealed, epoch, sequence).Write(datagram);
        body.CopyTo(datagram, PacketHeader.Size);
        using var sealer = PacketProtection.Create(key, sender, epoch);
        Assert.Equal(datagram.Length, sealer.Seal(datagram, body.Length));
        return datagram;
    }

    /// <summary>A data body by hand: the record count <paramref name="count"/> (which may lie), then <paramref name="parts"/> as they are.</summary>
    public static byte[] Body(ushort count, params byte[][] parts)
    {
        var head = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(head, count);
        return [.. head, .. parts.SelectMany(p => p)];
    }

    /// <summary>The wire record of <paramref name="e"/>, as owner 1 wrote it at <see cref="HandBuiltEpoch"/> with <paramref name="version"/>.</summary>
    public static byte[] Record(ConnectionEvent e, ulong version)
    {
        e.Entry.UpdatedMs = e.Entry.CreatedMs = (long)HandBuiltEpoch;
        e.Entry.Version = version;
        e.Entry.Owner = 1;
        var b = new byte[RecordCodec.MaxRecordSize];
        return b[..RecordCodec.Write(b, e)];
    }

    public static List<ConnectionEvent> DecodeAll(IEnumerable<byte[]> datagrams, ClusterKey? key, SyncEngine sender)
        => datagrams.SelectMany(d => Decode(d, key, sender.MemberId, sender.Epoch)).ToList();
}

/// <summary>Engines a test makes on its own, on one fake clock and one key, disposed together.</summary>
internal sealed class EngineSet : IDisposable
{
    private readonly List<SyncEngine> _engines = [];

    public FakeTimeProvider Time { get; } = new(EngineKit.Start);

    public ClusterKey Key { get; } = ClusterKey.Generate();

    /// <summary>An engine of <paramref name="member"/> with one peer (<see cref="EngineKit.Create"/>) on the set's clock and key.</summary>
    public (SyncEngine Engine, CaptureChannel Channel) Create(byte member, byte peer, ulong epoch = 0)
    {
        var created = EngineKit.Create(member, peer, Key, Time, epoch: epoch);
        _engines.Add(created.Engine);
        return created;
    }

    /// <summary>Disposes <paramref name="engine"/> with the set.</summary>
    public SyncEngine Add(SyncEngine engine)
    {
        _engines.Add(engine);
        return engine;
    }

    public void Dispose()
    {
        foreach (var e in _engines)
        {
            e.Dispose();
        }
    }
}

/// <summary>Member 1 (the sender, started) and member 2 (the receiver, fed by hand, not started) on one fake clock.</summary>
internal sealed class EnginePair : IDisposable
{
    private int _fromSender;
    private int _fromReceiver;

    public EnginePair(bool startSender = true, PolicyOptions? policy = null)
    {
        Time = new FakeTimeProvider(EngineKit.Start);
        Key = ClusterKey.Generate();
        (Sender, SenderChannel) = EngineKit.Create(1, 2, Key, Time, policy: policy);
        (Receiver, ReceiverChannel) = EngineKit.Create(2, 1, Key, Time, policy: policy);
        if (startSender)
        {
            Sender.Start();
        }
    }

    /// <summary>The sender advertised Active and the receiver Standby, the sender not started yet.</summary>
    public static EnginePair ActiveStandby()
    {
        var pair = new EnginePair(startSender: false);
        pair.Sender.AdvertisedState = (byte)MemberState.Active;
        pair.Receiver.AdvertisedState = (byte)MemberState.Standby;
        return pair;
    }

    public FakeTimeProvider Time { get; }

    public ClusterKey Key { get; }

    public SyncEngine Sender { get; }

    public CaptureChannel SenderChannel { get; }

    public SyncEngine Receiver { get; }

    public CaptureChannel ReceiverChannel { get; }

    /// <summary>Feeds a copy of <paramref name="datagram"/> to the receiver.</summary>
    public DropReason Feed(byte[] datagram) => EngineKit.Feed(Receiver, datagram);

    /// <summary>Feeds a copy of <paramref name="datagram"/> (the receiver's ack or heartbeat) back to the sender.</summary>
    public DropReason FeedBack(byte[] datagram) => EngineKit.Feed(Sender, datagram);

    /// <summary>Submits <paramref name="change"/> to the sender and waits for the data datagram that carries it.</summary>
    public byte[] SubmitAndCapture(in ConnectionEvent change) => EngineKit.SubmitAndCapture(Sender, SenderChannel, change);

    /// <summary>Waits until the sender has drained every pending change (and <paramref name="also"/> holds); fails the test on timeout.</summary>
    public void WaitDrained(Func<bool>? also = null)
        => Assert.True(SenderChannel.WaitUntil(_ => Sender.PendingCount == 0 && (also is null || also()), TimeSpan.FromSeconds(10)), "the sender did not drain");

    /// <summary>Waits until the sender has sent at least <paramref name="count"/> records; fails the test on timeout, else returns every record sent.</summary>
    public List<ConnectionEvent> WaitForRecords(int count)
    {
        Assert.True(SenderChannel.WaitUntil(_ => SentRecords().Count >= count, TimeSpan.FromSeconds(10)), $"fewer than {count} records sent");
        return SentRecords();
    }

    public List<ConnectionEvent> SentRecords() => EngineKit.DecodeAll(SenderChannel.DataTo(0), Key, Sender);

    /// <summary>
    /// Sends a full-class sentinel and waits for it: the sender handles changes in order, so once the sentinel is
    /// out, everything submitted before it that was going to be sent has been sent.
    /// </summary>
    public List<ConnectionEvent> FlushWithSentinel(ushort sentinelPort)
    {
        var sentinel = EngineKit.Tcp(443, sourcePort: sentinelPort);
        Sender.Submit(EngineKit.New(sentinel));
        Assert.True(
            SenderChannel.WaitUntil(_ => SentRecords().Any(r => r.Key == sentinel), TimeSpan.FromSeconds(10)),
            "sentinel was never sent");
        return SentRecords();
    }

    /// <summary>Ticks both engines and carries heartbeats and anti-entropy messages both ways (not data: what was lost stays lost) until quiet.</summary>
    public void Pump()
    {
        for (int round = 0; round < 50; round++)
        {
            Sender.OnTick();
            Receiver.OnTick();
            int moved = Carry(SenderChannel, ref _fromSender, Receiver) + Carry(ReceiverChannel, ref _fromReceiver, Sender);
            if (moved == 0 && round > 2)
            {
                return;
            }
        }
    }

    /// <summary>Lets the newest version settle (the sender notes it, 3 s pass), then runs one anti-entropy check to the end.</summary>
    public void SettleAndCheck()
    {
        Sender.OnTick(); // the Active notes its newest version: the cutoff once it is older than the settle time
        Time.Advance(TimeSpan.FromSeconds(3)); // past the settle time: the changes count
        Pump(); // heartbeats: each knows the other's state
        Check();
    }

    /// <summary>Starts one anti-entropy check on the sender (it must go out to the one peer) and carries it to the end.</summary>
    public void Check()
    {
        Assert.Equal(1, Sender.StartAntiEntropyCheck(Time.GetTimestamp()));
        Pump();
    }

    private static int Carry(CaptureChannel from, ref int next, SyncEngine to)
    {
        var sent = from.SentTo(0);
        int moved = 0;
        for (; next < sent.Count; next++)
        {
            var type = (MessageType)sent[next][3];
            if (type is MessageType.Heartbeat or MessageType.Digest or MessageType.DigestRequest or MessageType.RangeEntries)
            {
                to.HandleDatagram(sent[next].AsSpan());
                moved++;
            }
        }

        return moved;
    }

    public void Dispose()
    {
        Sender.Dispose();
        Receiver.Dispose();
    }
}
