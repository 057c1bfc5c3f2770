namespace ClusterSync.Plugins.Conntrack.Tests.Kernel;

/// <summary>
/// The source's handling of event datagrams, fed the kernel-captured fixtures and broken copies of them (a source needs
/// its sockets, so it is created in a namespace; it does not run).
/// </summary>
public sealed class SourceIngestTests
{
    private static readonly byte[][] Events = [.. Fixtures.Sources("kernel-events.txt", "event")];

    private static (ConntrackSource Source, RecordingSink Sink, CommitRegistry Registry) Create(Netns ns)
    {
        var registry = new CommitRegistry();
        // The fixtures were captured from loopback traffic: not ignored here.
        var source = ns.Run(() => new ConntrackSource(new ConntrackSettings { IgnoreLoopback = false }, registry));
        return (source, new RecordingSink(), registry);
    }

    [NetnsFact]
    public async Task HandleDatagram_KernelEvents_AnnouncedOncePerConnectionInOrder()
    {
        using var ns = Netns.Create();
        var (source, sink, _) = Create(ns);
        await using var _ = source;
        foreach (var e in Events)
        {
            source.HandleDatagram(e, sink);
        }

        var c = source.GetCounters();
        Assert.Equal(6, c["events_new"]);
        Assert.Equal(11, c["events_update"]);
        Assert.Equal(2, c["events_destroy"]);
        Assert.Equal(6, c["announced_new"]);
        Assert.Equal(2, c["announced_destroy"]);
        Assert.Equal(0, c["malformed"] + c["unmappable"] + c["echo_suppressed"]);
        Assert.Equal(4, c["tracked"]);
        var first = sink.Events.Where(e => e.Key.DestinationPort == 8080).Select(e => (e.Kind, e.Entry.State));
        Assert.Equal([(ConnectionEventKind.New, ProtocolState.TcpSynSent), (ConnectionEventKind.Update, ProtocolState.TcpSynReceived),
            (ConnectionEventKind.Update, ProtocolState.TcpEstablished), (ConnectionEventKind.Update, ProtocolState.TcpClose)], first);
        var destroy = sink.Events.Single(e => e.Kind == ConnectionEventKind.Destroy && e.Key.DestinationPort == 5353);
        Assert.True(destroy.HasCounters);
        Assert.Equal(29UL, destroy.Counters.OriginalBytes);
    }

    [NetnsFact]
    public async Task HandleDatagram_SteadyState_AllocatesNothingPerEvent()
    {
        using var ns = Netns.Create();
        var (source, _, _) = Create(ns);
        await using var _ = source;
        var sink = new CountingSink();
        for (int warm = 0; warm < 3; warm++)
        {
            foreach (var e in Events)
            {
                source.HandleDatagram(e, sink);
            }
        }

        // Steady state: a round of 500 × 19 events that allocates nothing (the runtime may allocate once while it
        // recompiles hot methods at a higher tier, so a few rounds are allowed to find one).
        var allocated = new List<long>();
        for (int attempt = 0; attempt < 5 && (allocated.Count == 0 || allocated[^1] != 0); attempt++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int round = 0; round < 500; round++)
            {
                foreach (var e in Events)
                {
                    source.HandleDatagram(e, sink);
                }
            }

            allocated.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.True(allocated[^1] == 0, "bytes allocated per round: " + string.Join(", ", allocated));
        Assert.True(sink.Count >= 500 * 15);
    }

    private sealed class CountingSink : IConnectionEventSink
    {
        public long Count;

        public int PendingCount => 0;

        public void Submit(ReadOnlySpan<ConnectionEvent> changes) => Count += changes.Length;
    }

    [NetnsFact]
    public async Task HandleDatagram_TruncatedAndCorrupted_CountedNeverThrown()
    {
        using var ns = Netns.Create();
        var (source, sink, _) = Create(ns);
        await using var _ = source;
        int fed = 0;
        foreach (var e in Events)
        {
            for (int length = 1; length < e.Length; length += 7)
            {
                var cut = e.AsSpan(0, length).ToArray();
                if (length >= Nl.HeaderLength)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(cut, (uint)length);   // lengths that agree, attributes that do not
                }

                source.HandleDatagram(cut, sink);
                fed++;
            }
        }

        var c = source.GetCounters();
        // Every datagram is accounted for: malformed, unmappable (a tuple cut short), or an event (cut in its tail attributes).
        Assert.True(c["malformed"] > fed / 2, $"malformed {c["malformed"]} of {fed}");
        Assert.Equal(fed, c["malformed"] + c["unmappable"] + c["events_new"] + c["events_update"] + c["events_destroy"]);
    }

    [NetnsFact]
    public async Task HandleDatagram_EventFromOwnCommitSocket_TrackedNotAnnounced()
    {
        using var ns = Netns.Create();
        var (source, sink, registry) = Create(ns);
        await using var _ = source;
        var zoneEntry = Events[12];    // inserted by the conntrack tool, nlmsg_pid 16582
        registry.AddPort(BinaryPrimitives.ReadUInt32LittleEndian(zoneEntry.AsSpan(12)));
        source.HandleDatagram(zoneEntry, sink);
        source.HandleDatagram(Events[0], sink);     // the kernel's own (pid 0)
        var c = source.GetCounters();
        Assert.Equal(1, c["echo_suppressed"]);
        Assert.Equal(2, c["tracked"]);
        Assert.Equal((ushort)8080, Assert.Single(sink.Events).Key.DestinationPort);
    }

    [NetnsFact]
    public async Task HandleDatagram_UntrackableProtocol_UnmappableCounted()
    {
        using var ns = Netns.Create();
        var (source, sink, _) = Create(ns);
        await using var _ = source;
        // The UDP NEW event turned into SCTP (132): protocol number byte inside CTA_PROTO_NUM of both tuples.
        var sctp = Events[9].ToArray();
        var reader = new NetlinkReader(Events[9]);
        Assert.True(reader.Next(out var m));
        Assert.True(CtParser.TryParse(m, out var r));
        Assert.Equal(17, r.Original.Protocol);
        for (int i = 0; i + 5 < sctp.Length; i++)
        {
            // nlattr { len 5, type CTA_PROTO_NUM } followed by 17
            if (sctp[i] == 5 && sctp[i + 1] == 0 && sctp[i + 2] == 1 && sctp[i + 3] == 0 && sctp[i + 4] == 17)
            {
                sctp[i + 4] = 132;
            }
        }

        source.HandleDatagram(sctp, sink);
        Assert.Equal(1, source.GetCounters()["unmappable"]);
        Assert.Empty(sink.Events);
    }
}
