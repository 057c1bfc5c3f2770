using ClusterSync.Templates;

namespace ClusterSync.Core.Tests.Templates;

/// <summary>
/// Anti-entropy carries templates (docs/templates.md): the Active's root digest holds a digest of its live templates; a
/// Standby whose templates differ asks for them, and the Active sends them again on the delta stream.
/// </summary>
public sealed class TemplateAntiEntropyTests : IDisposable
{
    private readonly EnginePair _pair;

    public TemplateAntiEntropyTests()
    {
        var p = EngineKit.TestPolicy();
        var policy = p with
        {
            Classes = [.. p.Classes.Select(c => c.Name == EngineKit.ShortLived
                ? c with { Templates = new TemplateOptions { Threshold = 2, WindowSeconds = 10, LifetimeSeconds = 60 } }
                : c)],
        };
        _pair = new EnginePair(startSender: false, policy: policy);
        _pair.Sender.AdvertisedState = (byte)MemberState.Active;
        _pair.Receiver.AdvertisedState = (byte)MemberState.Standby;
        _pair.Sender.Start();
        _pair.Time.Advance(TimeSpan.FromSeconds(1));
    }

    public void Dispose() => _pair.Dispose();

    /// <summary>Two short connections of one shape (tcp/80) that end at once: a template, and no connection record.</summary>
    private void MakeTemplate()
    {
        for (ushort port = 1000; port < 1002; port++)
        {
            var key = EngineKit.Tcp(80, port);
            _pair.Sender.Submit(EngineKit.New(key));
            _pair.Sender.Submit(EngineKit.Destroy(key));
        }

        // The counter moves when the record is encoded, the datagram reaches the channel when the pass flushes: wait for both.
        _pair.WaitDrained(() => _pair.Sender.Counters.TemplateRecordsSent >= 1 && _pair.SenderChannel.DataTo(0).Count >= 1);
    }

    [Fact]
    public void Check_StandbyLostTheTemplateRecord_AsksAndTheActiveSendsItAgain()
    {
        MakeTemplate();
        int lost = _pair.SenderChannel.DataTo(0).Count; // the template's datagram never reaches the Standby

        _pair.SettleAndCheck();

        Assert.Equal(1, _pair.Receiver.Counters.AntiEntropyTemplateMismatches);
        Assert.Equal(1, _pair.Sender.Counters.AntiEntropyTemplateRepairs);
        _pair.WaitDrained(() => _pair.Sender.Counters.TemplateRecordsSent >= 2 && _pair.SenderChannel.DataTo(0).Count > lost);
        foreach (var d in _pair.SenderChannel.DataTo(0).Skip(lost))
        {
            _pair.Feed(d); // the new record (and any resend of the lost datagram: a copy fed twice is only a replay)
        }

        var held = Assert.Single(_pair.Receiver.SnapshotTemplates());
        Assert.Equal(TemplateKeys.ShapeOf(EngineKit.Tcp(80, 1000)), held.Key);
        Assert.Equal(Assert.Single(_pair.Sender.SnapshotTemplates()).Version, held.Version);

        // Equal now: the next check finds nothing and sends nothing again.
        _pair.SettleAndCheck();
        Assert.Equal(1, _pair.Receiver.Counters.AntiEntropyTemplateMismatches);
        Assert.Equal(1, _pair.Sender.Counters.AntiEntropyTemplateRepairs);
        Assert.Equal(0, _pair.Receiver.Counters.AntiEntropyMismatches);
    }

    [Fact]
    public void Check_TemplatesEqual_NoRequestForThem()
    {
        MakeTemplate();
        foreach (var d in _pair.SenderChannel.DataTo(0))
        {
            Assert.Equal(DropReason.None, _pair.Feed(d));
        }

        Assert.Single(_pair.Receiver.SnapshotTemplates());

        _pair.SettleAndCheck();

        Assert.Equal(1, _pair.Receiver.Counters.AntiEntropyRootsCompared);
        Assert.Equal(0, _pair.Receiver.Counters.AntiEntropyTemplateMismatches);
        Assert.Empty(_pair.ReceiverChannel.Sent(MessageType.DigestRequest));
    }

    [Fact]
    public void DigestAndRequest_TemplateBlocks_ReadBackOnlyAtTheRoot()
    {
        var children = new RangeDigest[AntiEntropyMessages.Children];
        var body = new byte[AntiEntropyMessages.RootDigestWithTemplatesSize];
        Assert.Equal(AntiEntropyMessages.RootDigestWithTemplatesSize, AntiEntropyMessages.WriteDigest(body, 2, 1000, 0, 0, children, new RangeDigest(3, 0xABCD)));
        Assert.True(AntiEntropyMessages.TryReadDigest(body, out _, out _, out _, out _, children, out var templates));
        Assert.Equal(new RangeDigest(3, 0xABCD), templates);
        Assert.Equal(AntiEntropyMessages.DigestSize, AntiEntropyMessages.WriteDigest(body, 2, 1000, 1, 5, children, new RangeDigest(3, 0xABCD)));
        body[10] = 1; // a template block below the root is malformed
        Assert.False(AntiEntropyMessages.TryReadDigest(body, out _, out _, out _, out _, children, out _));

        var request = new byte[AntiEntropyMessages.RequestWithTemplatesSize];
        Assert.Equal(AntiEntropyMessages.RequestWithTemplatesSize, AntiEntropyMessages.WriteRequest(request, 2, 1000, 0, 0, 0, templates: true));
        Assert.True(AntiEntropyMessages.TryReadRequest(request, out _, out _, out _, out _, out ulong mask, out bool asks));
        Assert.Equal((0UL, true), (mask, asks));
        request[^1] = 2;
        Assert.False(AntiEntropyMessages.TryReadRequest(request, out _, out _, out _, out _, out _, out _));
        Assert.False(AntiEntropyMessages.TryReadRequest(request.AsSpan(0, AntiEntropyMessages.RequestSize), out _, out _, out _, out _, out _)); // mask 0, no template byte
    }
}
