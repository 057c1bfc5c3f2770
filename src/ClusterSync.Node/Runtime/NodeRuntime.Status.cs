using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Membership;

namespace ClusterSync.Node.Runtime;

/// <summary><c>/status</c>: assembled on request from snapshots of the engine, the controller, the full-sync counters, the data plane, the classifier and adaptive mode.</summary>
public sealed partial class NodeRuntime
{
    /// <summary>Count and XOR of a per-entry hash of (key, version) over the live connections: equal tables give equal digests.</summary>
    internal static TableDigest Digest(IEnumerable<KeyValuePair<ConnectionKey, ConnectionEntry>> entries) => ToDocument(TableDigestAccumulator.Of(entries));

    private static TableDigest ToDocument(TableDigestAccumulator d)
        => new() { Count = d.Count, Xor = d.Xor.ToString("x16", System.Globalization.CultureInfo.InvariantCulture) };

    /// <summary>What <c>/status</c> reports.</summary>
    public NodeStatus GetStatus()
    {
        var peers = Engine.GetPeerStatus();
        var lags = Engine.GetReplicationLag();
        return new NodeStatus
        {
            MemberId = Engine.MemberId,
            Epoch = Engine.Epoch,
            State = Engine.IsRunning ? "running" : Engine.Failure is not null ? "failed" : "stopped",
            Failure = Engine.Failure,
            TransportFailure = Engine.TransportFailure,
            ReplicationLagFailure = Engine.ReplicationLagFailure,
            UptimeSeconds = Math.Round(Engine.Uptime.TotalSeconds, 3),
            Encrypted = Model.Key is not null,
            SyncAddress = Model.LocalEndPoint.ToString(),
            SyncTransportPath = Engine.TransportPath,
            TableSize = Engine.LiveConnectionCount,
            TableEntries = Engine.TableCount,
            Pending = Engine.PendingCount,
            LastDataSequence = Engine.LastDataSequence,
            DataPlane = new DataPlaneStatus
            {
                Source = Model.Config.DataPlane.Source,
                LiveConnections = Generator?.LiveConnections,
                ChangesSubmitted = Submitted,
                Finished = Generator?.Finished == true || DataPlanePlugin?.Finished == true,
                Paused = Generator?.Held == true,
                Plugin = DataPlanePlugin?.GetStatus(),
            },
            Membership = new MembershipStatus
            {
                State = (_membership?.State ?? MemberState.Init).ToString(),
                Mode = Model.Config.Cluster.Mode,
                Priority = Model.Self.Priority,
                Preemption = Model.Config.Cluster.Preemption,
                Failovers = _membership?.Failovers ?? 0,
                SplitBrainsResolved = _membership?.SplitBrainsResolved ?? 0,
                LastFailoverMs = Math.Round(_membership?.LastFailoverMilliseconds ?? 0, 1),
                LastCommitted = _membership?.LastCommitted ?? 0,
                PromotingSinceUnixMs = _membership?.PromotingSinceUnixMs is double since && since > 0 ? Math.Round(since, 1) : null,
                PromotionsAbandoned = _membership?.PromotionsAbandoned ?? 0,
                HeartbeatStalls = Engine.HeartbeatStalls,
                Committed = Digest(_sink.CommittedEntries),
            },
            FullSync = _fullSyncCounters.ToDictionary(),
            Digest = ToDocument(TableDigestAccumulator.Of(Engine)),
            Peers = peers.Select((p, i) => new PeerStatusDocument
            {
                MemberId = p.MemberId,
                Address = Model.PeerEndPoints[i].ToString(),
                Epoch = p.Epoch,
                LastHeardMs = p.LastHeardAgeMs,
                Alive = p.Live,
                State = p.State,
                MemberState = (p.Live ? (MemberState)p.State : MemberState.Down).ToString(),
                Priority = p.Priority,
                ReceivedThrough = p.ReceivedThrough,
                AckedThrough = p.AckedThrough,
                RoundTripMs = Math.Round(p.RoundTripMs, 3),
                RoundTripVariationMs = Math.Round(p.RoundTripVariationMs, 3),
                ReplicationLagDatagrams = lags[i].SequenceLag,
                ReplicationLagMs = lags[i].OldestUnackedAgeMs,
                InSendWindow = lags[i].InWindow,
                Lagging = lags[i].Lagging,
                Links = LinkDocuments(i),
                LinkSwitches = Engine.LinkSwitches(i),
            }).ToList(),
            Counters = Engine.Counters.ToDictionary(),
            Gc = GetGcStatus(),
            Templates = TemplatesDocument(),
            Plugins = Plugins.GetStatus(),
            Exposure = Adaptive.GetExposure(),
            Adaptive = Adaptive.GetAdaptive(),
            Telemetry = Adaptive.GetTelemetry(),
        };
    }

    private TemplatesStatus TemplatesDocument()
    {
        var k = Engine.Counters;
        return new TemplatesStatus
        {
            Live = Engine.LiveTemplateCount,
            Created = Volatile.Read(ref k.TemplatesCreated),
            Expired = Volatile.Read(ref k.TemplatesExpired),
            Covered = Volatile.Read(ref k.TemplateCovered),
            CoveredEnded = Volatile.Read(ref k.TemplateCoveredEnded),
            ExposureRemovedSeconds = Math.Round(k.TemplateExposureRemovedSeconds, 3),
            Unsynced = Volatile.Read(ref k.TemplateUnsynced),
            RecordsSent = Volatile.Read(ref k.TemplateRecordsSent),
            RecordsApplied = Volatile.Read(ref k.TemplateRecordsApplied),
            MessagesSaved = (2 * Volatile.Read(ref k.TemplateUnsynced)) - Volatile.Read(ref k.TemplateRecordsSent),
            Committed = _sink.CommittedTemplates.Count,
            PickedUpByTemplate = _sink.PickedUpByTemplate,
        };
    }

    /// <summary>The sync links toward peer <paramref name="peerIndex"/> for <c>/status</c> (empty with a single link).</summary>
    private List<LinkStatusDocument> LinkDocuments(int peerIndex)
    {
        var links = Engine.GetLinkStatus(peerIndex);
        var result = new List<LinkStatusDocument>(links.Length);
        for (int l = 0; l < links.Length; l++)
        {
            var s = links[l];
            result.Add(new LinkStatusDocument
            {
                Id = s.LinkId,
                Address = l < Model.PeerLinkEndPoints.Count ? Model.PeerLinkEndPoints[l][peerIndex].ToString() : "",
                Up = s.Up,
                LastHeardMs = s.HeardAgeMs,
                PeerHearsUs = s.PeerHearsUs,
                Carrying = s.Carrying,
            });
        }

        return result;
    }
}
