using ClusterSync.Engine;
using ClusterSync.Protocol;
using Prometheus;

namespace ClusterSync.Node.Runtime;

/// <summary>
/// The engine's counters in the Prometheus text exposition format (prometheus-net, a registry of our own, so
/// nothing else is exported). Values are copied from the engine just before each scrape.
/// </summary>
internal sealed class NodeMetrics
{
    private static readonly Dictionary<string, string> s_help = new(StringComparer.Ordinal)
    {
        ["updates_sent"] = "Connection updates sent in data datagrams (first transmissions).",
        ["updates_applied"] = "Connection updates received from peers and applied to the table.",
        ["updates_stale"] = "Connection updates received from peers that were older than the table's entry.",
        ["bytes_sent"] = "Bytes of datagrams sent (data, retransmissions and control).",
        ["bytes_received"] = "Bytes of datagrams received.",
        ["retransmissions"] = "Data datagrams resent after a NACK.",
        ["nack_ranges_sent"] = "Sequence ranges this member asked peers to resend.",
        ["nack_ranges_received"] = "Sequence ranges peers asked this member to resend.",
        ["resync_needed"] = "Gaps from a peer that could no longer be repaired (a full sync is needed).",
        ["link_switches"] = "Times a peer's traffic moved to another sync link.",
        ["link_downs"] = "Times a sync link toward a peer went down (no heartbeat both ways within the dead interval).",
        ["link_ups"] = "Times a sync link toward a peer came up.",
        ["link_mismatches"] = "Heartbeats that arrived on another sync link than the one they were sent on (ignored for link health).",
    };

    private readonly NodeRuntime _node;
    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly Dictionary<string, Counter> _counters = new(StringComparer.Ordinal);
    private readonly Counter _updatesReceived;
    private readonly Counter _drops;
    private readonly Gauge _queueDepth;
    private readonly Gauge _tableSize;
    private readonly Gauge _tableEntries;
    private readonly Gauge _up;
    private readonly Gauge _peerUp;
    private readonly Gauge _peerLastHeard;
    private readonly Gauge _peerRoundTrip;
    private readonly Gauge _peerLagDatagrams;
    private readonly Gauge _peerLagSeconds;
    private readonly Gauge? _generatorLive;
    private readonly Gauge _memberState;
    private readonly Gauge _peerState;
    private readonly Counter _failovers;
    private readonly Counter _splitBrains;
    private readonly Gauge _lastFailover;
    private readonly Dictionary<string, Counter> _fullSync = new(StringComparer.Ordinal);
    private readonly Gauge _linkUp;
    private readonly Gauge _linkCarrying;
    private readonly Gauge _pluginCounters;
    private readonly Gauge _gcMaxPause;
    private readonly Counter _gcPause;
    private readonly Counter _gcCollections;

    public NodeMetrics(NodeRuntime node)
    {
        _node = node;
        var factory = Metrics.WithCustomRegistry(_registry);
        foreach (var name in node.Engine.Counters.ToDictionary().Keys.Where(n => !n.StartsWith("drops_", StringComparison.Ordinal)))
        {
            var help = s_help.TryGetValue(name, out var h) ? h : $"Engine counter {name}.";
            _counters[name] = factory.CreateCounter($"clustersync_{name}_total", help);
        }

        _updatesReceived = factory.CreateCounter("clustersync_updates_received_total", "Connection updates received from peers (applied plus stale).");
        _drops = factory.CreateCounter("clustersync_drops_total", "Datagrams dropped, by reason.", new CounterConfiguration { LabelNames = ["reason"] });
        _queueDepth = factory.CreateGauge("clustersync_queue_depth", "Connections waiting for the sender.");
        _tableSize = factory.CreateGauge("clustersync_table_size", "Connections in the table (tombstones excluded).");
        _tableEntries = factory.CreateGauge("clustersync_table_entries", "Table entries including tombstones.");
        _up = factory.CreateGauge("clustersync_up", "1 while the engine runs and its transport has not failed.");
        _peerUp = factory.CreateGauge("clustersync_peer_up", "1 while the peer has been heard within the dead interval.", new GaugeConfiguration { LabelNames = ["peer"] });
        _peerLastHeard = factory.CreateGauge("clustersync_peer_last_heard_seconds", "Seconds since the peer was last heard from (-1: never).", new GaugeConfiguration { LabelNames = ["peer"] });
        _peerRoundTrip = factory.CreateGauge("clustersync_peer_round_trip_seconds", "Smoothed round trip of our data to the peer and its ack (0: no sample yet).", new GaugeConfiguration { LabelNames = ["peer"] });
        _peerLagDatagrams = factory.CreateGauge("clustersync_peer_replication_lag_datagrams", "Data datagrams sent to the peer and not yet acknowledged.", new GaugeConfiguration { LabelNames = ["peer"] });
        _peerLagSeconds = factory.CreateGauge("clustersync_peer_replication_lag_seconds", "Age of the oldest update the peer has not acknowledged (0: caught up).", new GaugeConfiguration { LabelNames = ["peer"] });
        if (node.GeneratorLiveConnections is not null)
        {
            _generatorLive = factory.CreateGauge("clustersync_generator_live_connections", "Live connections of the built-in workload generator.");
        }

        _memberState = factory.CreateGauge("clustersync_member_state", "1 for this member's current state (Init, Syncing, Standby, Active, Down, Maintenance, Promoting), 0 for the others.", new GaugeConfiguration { LabelNames = ["state"] });
        _peerState = factory.CreateGauge("clustersync_peer_member_state", "The state a peer advertises: 0 Init, 1 Syncing, 2 Standby, 3 Active, 4 Down, 5 Maintenance (admin down), 6 Promoting (taking over, its commit under way); 4 also when not heard within the dead interval.", new GaugeConfiguration { LabelNames = ["peer"] });
        _failovers = factory.CreateCounter("clustersync_failovers_total", "Times this member became Active (committed its replica into the data plane).");
        _splitBrains = factory.CreateCounter("clustersync_split_brains_total", "Times this member stepped down because a higher-ranked member was also Active.");
        _lastFailover = factory.CreateGauge("clustersync_last_failover_seconds", "At the last promotion: seconds from the previous Active's last heartbeat to this member serving.");
        foreach (var name in node.FullSyncCounters.ToDictionary().Keys)
        {
            _fullSync[name] = factory.CreateCounter($"clustersync_{name}_total", $"Full sync counter {name}.");
        }

        _linkUp = factory.CreateGauge("clustersync_link_up", "1 while heartbeats cross the sync link both ways within the dead interval (only with several links).", new GaugeConfiguration { LabelNames = ["peer", "link"] });
        _linkCarrying = factory.CreateGauge("clustersync_link_carrying", "1 for the sync link that carries the peer's data, acks and NACKs (only with several links).", new GaugeConfiguration { LabelNames = ["peer", "link"] });
        _pluginCounters = factory.CreateGauge("clustersync_dataplane_plugin", "The data-plane plugin's own counters (/status dataPlane.plugin sourceCounters and sinkCounters), by side and name.", new GaugeConfiguration { LabelNames = ["side", "name"] });
        _gcMaxPause = factory.CreateGauge("clustersync_gc_max_pause_seconds", "The longest single garbage-collector pause of this process since it started (sampled every 20 ms per collection kind).");
        _gcPause = factory.CreateCounter("clustersync_gc_pause_seconds_total", "Time this process spent paused by the garbage collector.");
        _gcCollections = factory.CreateCounter("clustersync_gc_collections_total", "Garbage collections of this process, by generation.", new CounterConfiguration { LabelNames = ["generation"] });
        node.Adaptive.RegisterMetrics(factory);
        _registry.AddBeforeCollectCallback(Update);
    }

    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public Task WriteAsync(Stream output, CancellationToken cancellationToken) => _registry.CollectAndExportAsTextAsync(output, cancellationToken);

    private void Update()
    {
        var engine = _node.Engine;
        var values = engine.Counters.ToDictionary();
        foreach (var (name, counter) in _counters)
        {
            counter.IncTo(values[name]);
        }

        _updatesReceived.IncTo(engine.Counters.UpdatesApplied + engine.Counters.UpdatesStale);
        foreach (var reason in Enum.GetValues<DropReason>())
        {
            if (reason != DropReason.None)
            {
                _drops.WithLabels(Snake(reason.ToString())).IncTo(engine.Counters.DropsFor(reason));
            }
        }

        _queueDepth.Set(engine.PendingCount);
        _tableSize.Set(engine.LiveConnectionCount);
        _tableEntries.Set(engine.TableCount);
        _up.Set(engine.IsRunning ? 1 : 0);
        foreach (var p in engine.GetPeerStatus())
        {
            var peer = p.MemberId.ToString(System.Globalization.CultureInfo.InvariantCulture);
            _peerUp.WithLabels(peer).Set(p.Live ? 1 : 0);
            _peerLastHeard.WithLabels(peer).Set(p.LastHeardAgeMs is { } ms ? ms / 1000.0 : -1);
            _peerRoundTrip.WithLabels(peer).Set(p.RoundTripMs / 1000.0);
        }

        foreach (var lag in engine.GetReplicationLag())
        {
            var peer = lag.MemberId.ToString(System.Globalization.CultureInfo.InvariantCulture);
            _peerLagDatagrams.WithLabels(peer).Set(lag.SequenceLag);
            _peerLagSeconds.WithLabels(peer).Set(lag.OldestUnackedAgeMs / 1000.0);
        }

        var state = _node.Membership?.State ?? Membership.MemberState.Init;
        foreach (var st in Enum.GetValues<Membership.MemberState>())
        {
            _memberState.WithLabels(st.ToString()).Set(st == state ? 1 : 0);
        }

        foreach (var p in engine.GetPeerStatus())
        {
            _peerState.WithLabels(p.MemberId.ToString(System.Globalization.CultureInfo.InvariantCulture)).Set(p.Live ? p.State : (int)Membership.MemberState.Down);
        }

        var peerIds = engine.Options.PeerMemberIds;
        for (int i = 0; i < peerIds.Count; i++)
        {
            var peer = peerIds[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
            foreach (var link in engine.GetLinkStatus(i))
            {
                var id = link.LinkId.ToString(System.Globalization.CultureInfo.InvariantCulture);
                _linkUp.WithLabels(peer, id).Set(link.Up ? 1 : 0);
                _linkCarrying.WithLabels(peer, id).Set(link.Carrying ? 1 : 0);
            }
        }

        _failovers.IncTo(_node.Membership?.Failovers ?? 0);
        _splitBrains.IncTo(_node.Membership?.SplitBrainsResolved ?? 0);
        _lastFailover.Set((_node.Membership?.LastFailoverMilliseconds ?? 0) / 1000.0);
        var fullSync = _node.FullSyncCounters.ToDictionary();
        foreach (var (name, counter) in _fullSync)
        {
            counter.IncTo(fullSync[name]);
        }

        if (_node.DataPlanePlugin?.GetStatus() is { } plugin)
        {
            foreach (var (name, value) in plugin.SourceCounters ?? new Dictionary<string, long>())
            {
                _pluginCounters.WithLabels("source", name).Set(value);
            }

            foreach (var (name, value) in plugin.SinkCounters ?? new Dictionary<string, long>())
            {
                _pluginCounters.WithLabels("sink", name).Set(value);
            }
        }

        var gc = _node.GetGcStatus();
        _gcMaxPause.Set(gc.MaxPauseMs / 1000.0);
        _gcPause.IncTo(gc.TotalPauseMs / 1000.0);
        _gcCollections.WithLabels("0").IncTo(gc.Gen0Collections);
        _gcCollections.WithLabels("1").IncTo(gc.Gen1Collections);
        _gcCollections.WithLabels("2").IncTo(gc.Gen2Collections);
        _node.Adaptive.UpdateMetrics();
        if (_generatorLive is not null && _node.GeneratorLiveConnections is { } live)
        {
            _generatorLive.Set(live);
        }
    }

    private static string Snake(string s) => string.Concat(s.Select((c, i) => char.IsUpper(c) && i > 0 ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));
}
