using System.Buffers.Binary;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Policy;
using ClusterSync.Protocol;
using ClusterSync.Security;
using Microsoft.Extensions.Time.Testing;

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
        bool insecure = false, PolicyOptions? policy = null)
    {
        var channel = new CaptureChannel(1);
        var options = new SyncEngineOptions
        {
            MemberId = member,
            PeerMemberIds = [peer],
            TableCapacity = 1024,
            ResendBufferDatagrams = 64,
            SendWindowDatagrams = 16,
            AckEveryDatagrams = 8,
            Insecure = insecure,
            Policy = policy ?? TestPolicy(),
        };
        return (new SyncEngine(options, channel, key, time), channel);
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
        var copy = (byte[])datagram.Clone();
        Assert.Equal(DropReason.None, PacketHeader.TryRead(copy, out var header));
        Assert.Equal(MessageType.Data, header.Type);
        using var opener = PacketProtection.Create(key, sender, epoch);
        int length = opener.Open(copy);
        Assert.True(length >= 2, "datagram did not authenticate");
        var body = copy.AsSpan(PacketHeader.Size, length);
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

    public static List<ConnectionEvent> DecodeAll(IEnumerable<byte[]> datagrams, ClusterKey? key, SyncEngine sender)
        => datagrams.SelectMany(d => Decode(d, key, sender.MemberId, sender.Epoch)).ToList();
}

/// <summary>Member 1 (the sender, started) and member 2 (the receiver, fed by hand, not started) on one fake clock.</summary>
internal sealed class EnginePair : IDisposable
{
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

    public FakeTimeProvider Time { get; }

    public ClusterKey Key { get; }

    public SyncEngine Sender { get; }

    public CaptureChannel SenderChannel { get; }

    public SyncEngine Receiver { get; }

    public CaptureChannel ReceiverChannel { get; }

    /// <summary>Feeds a copy of <paramref name="datagram"/> to the receiver.</summary>
    public DropReason Feed(byte[] datagram) => Receiver.HandleDatagram(((byte[])datagram.Clone()).AsSpan());

    /// <summary>Submits <paramref name="change"/> to the sender and waits for the data datagram that carries it.</summary>
    public byte[] SubmitAndCapture(in ConnectionEvent change)
    {
        int before = SenderChannel.DataTo(0).Count;
        Sender.Submit(change);
        return SenderChannel.WaitForData(before + 1)[before];
    }

    public List<ConnectionEvent> SentRecords() => EngineKit.DecodeAll(SenderChannel.DataTo(0), Key, Sender);

    public void Dispose()
    {
        Sender.Dispose();
        Receiver.Dispose();
    }
}
