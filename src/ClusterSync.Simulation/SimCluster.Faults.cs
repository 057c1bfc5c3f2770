using ClusterSync.Connections;
using ClusterSync.Membership;

namespace ClusterSync.Simulation;

/// <summary>Injecting the scenario's faults, healing, and the checks at the end of a run.</summary>
internal sealed partial class SimCluster
{
    private void Inject(FaultEvent f)
    {
        if (_healed)
        {
            return;
        }

        byte target = f.TargetsActive && _serving is { Up: true } s ? s.Id : f.Member;
        Trace($"fault: {f}{(f.TargetsActive ? $" (m{target})" : "")}");
        switch (f.Kind)
        {
            case FaultKind.Degrade:
                for (byte p = 1; p <= Size; p++)
                {
                    if (p == target)
                    {
                        continue;
                    }

                    foreach (var link in new[] { Network.Link(target, p), Network.Link(p, target) })
                    {
                        link.Loss = f.Magnitude;
                        link.Duplicate = f.Magnitude / 4;
                        link.Reorder = f.Magnitude / 2;
                        link.Jitter = TimeSpan.FromMilliseconds(f.Magnitude * 40);
                    }
                }

                Until(f.Duration, () =>
                {
                    for (byte p = 1; p <= Size; p++)
                    {
                        Network.Link(target, p).Loss = Network.Link(p, target).Loss = 0;
                        Network.Link(target, p).Duplicate = Network.Link(p, target).Duplicate = 0;
                        Network.Link(target, p).Reorder = Network.Link(p, target).Reorder = 0;
                        Network.Link(target, p).Jitter = Network.Link(p, target).Jitter = TimeSpan.Zero;
                    }
                });
                break;
            case FaultKind.Isolate:
                SetIsolated(target, true);
                Until(f.Duration, () => SetIsolated(target, false));
                break;
            case FaultKind.OneWayCut:
                Network.Link(target, f.Peer).Cut = true;
                Until(f.Duration, () => Network.Link(target, f.Peer).Cut = false);
                break;
            case FaultKind.Crash:
                CrashMember(target, "crash");
                Until(f.Duration, () => StartMember(target, wrongKey: false));
                break;
            case FaultKind.FastRestart:
                CrashMember(target, "fast restart");
                World.Schedule(TimeSpan.FromMilliseconds(World.Random.Next(1, 50)), () => StartMember(target, wrongKey: false));
                break;
            case FaultKind.WrongKey:
                CrashMember(target, "restart with a wrong key");
                World.Schedule(TimeSpan.FromMilliseconds(World.Random.Next(1, 200)), () => StartMember(target, wrongKey: true));
                break;
            case FaultKind.ClockJump:
                _clocks[target].WallOffset += TimeSpan.FromSeconds(f.Magnitude);
                break;
            case FaultKind.CutTransfers:
                _transferCutRate = f.Magnitude;
                Until(f.Duration, () => _transferCutRate = 0);
                break;
        }
    }

    /// <summary>Runs <paramref name="undo"/> after <paramref name="duration"/>, unless healing came first (it undoes everything).</summary>
    private void Until(TimeSpan duration, Action undo) => World.Schedule(duration, () =>
    {
        if (!_healed)
        {
            undo();
        }
    });

    private void SetIsolated(byte member, bool cut)
    {
        for (byte p = 1; p <= Size; p++)
        {
            if (p != member)
            {
                Network.Link(member, p).Cut = cut;
                Network.Link(p, member).Cut = cut;
            }
        }
    }

    /// <summary>Faults stop: a clean network, no cut transfers, every member up with the right key (clock offsets stay).</summary>
    private void Heal()
    {
        _healed = true;
        Network.HealAll();
        _transferCutRate = 0;
        Trace("heal");
        for (byte id = 1; id <= Size; id++)
        {
            if (_members[id] is { Up: true } m && _wrongKey[id])
            {
                CrashMember(id, "restart with the right key");
            }

            if (_members[id] is not { Up: true })
            {
                StartMember(id, wrongKey: false);
            }
        }
    }

    private static string AntiEntropy(SimMember active, SimMember standby)
    {
        var a = active.Engine.Counters;
        var s = standby.Engine.Counters;
        return $"Active checks {a.AntiEntropyChecks}, ranges sent {a.AntiEntropyRangesSent}; Standby roots compared {s.AntiEntropyRootsCompared}," +
            $" mismatches {s.AntiEntropyMismatches}, ranges repaired {s.AntiEntropyRangesRepaired}, entries repaired {s.AntiEntropyEntriesRepaired}";
    }

    /// <summary>A bound after churn stopped: one Active, every other member a Standby equal to it, nothing queued or wedged.</summary>
    private void CheckFinal()
    {
        var up = UpMembers().ToList();
        var actives = up.Where(m => m.State == MemberState.Active).ToList();
        if (actives.Count != 1)
        {
            Report(Invariants.SingleActive,
                $"{actives.Count} Active members {_scenario.ConvergenceBound.TotalSeconds:F0}s after churn stopped: " +
                string.Join(", ", up.Select(m => $"m{m.Id}={m.State}")));
            if (actives.Count == 0)
            {
                return;
            }
        }

        var active = _serving is { Up: true, State: MemberState.Active } s ? s : actives[0];
        if (!active.Engine.SendWindowOpen || active.Engine.PendingCount > 0)
        {
            Report(Invariants.WedgedWindow,
                $"Active m{active.Id}: send window {(active.Engine.SendWindowOpen ? "open" : "full")}, {active.Engine.PendingCount} changes queued," +
                $" last sequence {active.Engine.LastDataSequence}, peers acked " +
                string.Join(", ", active.Engine.GetPeerStatus().Select(p => $"m{p.MemberId}:{p.AckedThrough}{(p.Live ? "" : " (dead)")}")));
        }

        var truth = active.Engine.SnapshotTable().ToDictionary(e => e.Key, e => e.Value.Version);
        foreach (var m in up)
        {
            if (ReferenceEquals(m, active) || m.State == MemberState.Active)
            {
                continue;
            }

            if (m.State != MemberState.Standby)
            {
                Report(Invariants.Liveness, $"m{m.Id} is {m.State} {_scenario.ConvergenceBound.TotalSeconds:F0}s after churn stopped (restart #{m.Incarnation})");
                continue;
            }

            var replica = m.Engine.SnapshotTable();
            int ghosts = 0;
            int stale = 0;
            ConnectionKey? example = null;
            var seen = new HashSet<ConnectionKey>();
            foreach (var (k, e) in replica)
            {
                seen.Add(k);
                if (!truth.TryGetValue(k, out ulong v))
                {
                    ghosts++;
                    example ??= k;
                }
                else if (v != e.Version)
                {
                    stale++;
                }
            }

            int missing = truth.Keys.Count(k => !seen.Contains(k));
            if (ghosts > 0)
            {
                active.Engine.TryGetEntry(example!.Value, out var tomb);
                Report(Invariants.Ghost,
                    $"Standby m{m.Id} holds {ghosts} connections Active m{active.Id} does not (e.g. {example}, {(tomb.Version != 0 ? "a tombstone on the Active" : "absent on the Active")})" +
                    $"; {replica.Count} vs {truth.Count} live; anti-entropy: {AntiEntropy(active, m)}");
            }

            if (missing > 0 || stale > 0)
            {
                Report(Invariants.Convergence,
                    $"Standby m{m.Id} (restart #{m.Incarnation}) lacks {missing} and holds {stale} stale of Active m{active.Id}'s {truth.Count} connections" +
                    $" {_scenario.ConvergenceBound.TotalSeconds:F0}s after churn stopped; m{m.Id} received m{active.Id} through " +
                    $"{m.Engine.ReceivedThrough(active.Id).Cumulative} of {active.Engine.LastDataSequence}; anti-entropy: {AntiEntropy(active, m)}");
            }
        }
    }
}
