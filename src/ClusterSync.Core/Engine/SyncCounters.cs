using ClusterSync.Protocol;

namespace ClusterSync.Engine;

/// <summary>
/// Everything the engine counts. Each field has one writing thread (the producer, the sender, the receiver or
/// the control timer), so plain increments suffice; readers on other threads see a recent value.
/// </summary>
public sealed class SyncCounters
{
    // producer (data plane) side
    public long EventsSubmitted;
    public long UpdatesQueued;
    public long UpdatesCoalesced;
    public long DelayedScheduled;
    public long DelayedAnnounced;
    /// <summary>Related connections a protocol plugin tied to a live control connection.</summary>
    public long RelatedTied;
    /// <summary>Related connections destroyed because their control connection ended.</summary>
    public long RelatedDestroyedWithControl;
    /// <summary>Related connections beyond the per-unit limit (kept as ordinary connections).</summary>
    public long RelatedOverflow;
    /// <summary>Units that could not travel in one datagram (larger than the MTU, or cut by a staging chunk).</summary>
    public long RelatedSplit;
    public long DelayedSuppressed;
    public long DelayedRevised;
    public long NeverSynced;
    public long UnknownDestroys;
    public long Expired;

    // templates (docs/templates.md; written under the table lock, by whichever thread holds it)
    /// <summary>Templates this member created (a class's threshold of one shape within its window).</summary>
    public long TemplatesCreated;
    /// <summary>Templates removed at the end of their lifetime (on every member, each on its own clock).</summary>
    public long TemplatesExpired;
    /// <summary>Templates not created because <c>TemplateTracker.MaxTemplates</c> were live.</summary>
    public long TemplatesRefused;
    /// <summary>New shapes not counted because <c>TemplateTracker.MaxShapes</c> were being counted.</summary>
    public long TemplateShapesRefused;
    /// <summary>New connections of a class that makes templates that a live template already covered.</summary>
    public long TemplateCovered;
    /// <summary>Covered connections that ended before they were announced: the template was their only protection.</summary>
    public long TemplateCoveredEnded;
    /// <summary>Milliseconds of exposure the templates removed: Σ min(lifetime, delay) over <see cref="TemplateCoveredEnded"/> (not a flat counter: metrics take base units).</summary>
    internal long TemplateExposureRemovedMs;

    /// <summary>Seconds of exposure the templates removed: Σ min(lifetime, delay) over <see cref="TemplateCoveredEnded"/>.</summary>
    public double TemplateExposureRemovedSeconds => Volatile.Read(ref TemplateExposureRemovedMs) / 1000.0;
    /// <summary>Covered connections a decider (adaptive mode) would have announced after a delay and that were left unsynchronized instead.</summary>
    public long TemplateUnsynced;
    /// <summary>Template records sent (creations and keep-alives, and re-announcements at a full sync's cut).</summary>
    public long TemplateRecordsSent;
    /// <summary>Template records received and applied (newer than the template held).</summary>
    public long TemplateRecordsApplied;
    /// <summary>Template records received and not applied: stale, already expired, or beyond the template limit.</summary>
    public long TemplateRecordsStale;

    // sender thread
    /// <summary>Records sent in Data datagrams (connection records and template records; each counted once, however many peers).</summary>
    public long UpdatesSent;
    public long DatagramsSent;
    public long BytesSent;
    public long Retransmissions;
    public long GoneSent;
    public long WindowStalls;
    /// <summary>Times a live peer stopped holding the send window back: its acknowledgements stalled for a dead interval.</summary>
    public long WindowPeersDropped;
    public long SendFailures;

    // control timer
    public long AcksSent;
    public long NackRangesSent;
    public long HeartbeatsSent;
    public long LinkUps;
    public long LinkDowns;
    public long LinkSwitches;
    /// <summary>Anti-entropy checks started (Active: root digests sent, one per live Standby).</summary>
    public long AntiEntropyChecks;
    /// <summary>Root digests compared (Standby).</summary>
    public long AntiEntropyRootsCompared;
    /// <summary>Root digests that differed from this member's table (Standby).</summary>
    public long AntiEntropyMismatches;
    /// <summary>Small differing ranges listed entry by entry (Active).</summary>
    public long AntiEntropyRangesSent;
    /// <summary>Differing ranges repaired from such a list (Standby).</summary>
    public long AntiEntropyRangesRepaired;
    /// <summary>Entries repaired by anti-entropy (Standby): newer versions applied plus entries removed that the Active does not hold.</summary>
    public long AntiEntropyEntriesRepaired;
    /// <summary>Root digests whose template digest differed from this member's (Standby): it asked for the templates.</summary>
    public long AntiEntropyTemplateMismatches;
    /// <summary>Times this member sent its live templates again because a Standby's template digest differed (Active).</summary>
    public long AntiEntropyTemplateRepairs;
    /// <summary>Times a live peer's replication lag passed <c>maxReplicationLag</c> (once per episode).</summary>
    public long ReplicationLagAlarms;

    // receiver thread
    /// <summary>Every datagram received, including those the transport could not hand over: = accepted + total drops.</summary>
    public long DatagramsReceived;
    /// <summary>Datagrams that passed every check (authenticated, not a replay, parsed).</summary>
    public long DatagramsAccepted;
    public long BytesReceived;
    public long UpdatesApplied;
    public long UpdatesStale;
    public long AcksReceived;
    public long NackRangesReceived;
    public long HeartbeatsReceived;
    public long GoneReceived;
    public long ResyncNeeded;
    public long LostSequences;
    public long PeerRestarts;
    /// <summary>Keys derived for epochs of peers not yet adopted (rate-limited per peer: drops_derivation_limited).</summary>
    public long KeyDerivations;
    /// <summary>Entries a full sync that replaces removed: held here, absent from the snapshot and unchanged since (ghosts).</summary>
    public long ReplaceRemoved;
    public long ReceiveFailures;
    /// <summary>Times the receiver found the table lock busy past its patience and handed received records to the apply thread (it never waits).</summary>
    public long ApplyHandoffs;
    public long LinkMismatches;
    /// <summary>Passes the sender started from its bounded spin, without blocking (not exported: SyncEngine.SenderSpinHits).</summary>
    internal long SenderSpinHits;
    /// <summary>Passes sent on the submitting thread (not exported: SyncEngine.InlineSends).</summary>
    internal long InlineSends;
    public readonly long[] Drops = new long[Enum.GetValues<DropReason>().Length];

    public long TotalDrops => Drops.Sum();

    public long DropsFor(DropReason reason) => Volatile.Read(ref Drops[(int)reason]);

    /// <summary>A flat name → value view (for status output and tests).</summary>
    public IReadOnlyDictionary<string, long> ToDictionary()
    {
        var d = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var f in typeof(SyncCounters).GetFields())
        {
            if (f.FieldType == typeof(long))
            {
                d[ToSnake(f.Name)] = (long)f.GetValue(this)!;
            }
        }

        foreach (var r in Enum.GetValues<DropReason>())
        {
            if (r != DropReason.None)
            {
                d["drops_" + ToSnake(r.ToString())] = Drops[(int)r];
            }
        }

        return d;
    }

    private static string ToSnake(string s)
    {
        var sb = new System.Text.StringBuilder(s.Length + 8);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsUpper(s[i]) && i > 0)
            {
                sb.Append('_');
            }

            sb.Append(char.ToLowerInvariant(s[i]));
        }

        return sb.ToString();
    }
}
