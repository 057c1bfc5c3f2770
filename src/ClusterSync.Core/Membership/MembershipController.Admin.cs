using Microsoft.Extensions.Logging;

namespace ClusterSync.Membership;

/// <summary>What an administrative request (<c>clustersync admin down|up|failover</c>) came to.</summary>
public enum AdminOutcome
{
    /// <summary>Done: the member is where the request wanted it.</summary>
    Done,
    /// <summary>Refused before anything changed (another request in progress, no Standby to take over, not Active, ...).</summary>
    Refused,
    /// <summary>Tried and abandoned (the successor did not acknowledge in time, died, a split brain): see the message.</summary>
    Failed,
}

/// <summary>
/// The answer to an administrative request: its outcome, a sentence for the operator, this member's state when it was
/// decided, the member that took the Active role over (0: none), how long the hand-over of pending changes took (from
/// the request to the successor's acknowledgement of every change) and how long the successor took to become Active after that.
/// </summary>
public sealed record AdminResult(AdminOutcome Outcome, string Message, MemberState State, byte Successor = 0, double HandoverMilliseconds = 0, double SwitchMilliseconds = 0);

/// <summary>
/// Maintenance and manual switchover (Membership/README.md, "Administrative down and switchover"). Requests arrive on
/// any thread and only set what the next control tick acts on; their tasks complete on the tick.
/// <list type="bullet">
/// <item><b>down</b> on a Standby: it becomes <see cref="MemberState.Maintenance"/> (alive, replicating, out of every
/// election). On the Active: it picks the best-ranked live Standby as its successor, holds its data-plane source
/// (<see cref="Serving"/> false), stays Active until the successor acknowledged every data sequence it sent and nothing
/// is queued (the split-brain handover's check, <c>SyncEngine.HandedOverTo</c>), then advertises Maintenance naming
/// the successor. Past ten dead intervals without that acknowledgement it gives up and keeps serving.</item>
/// <item><b>failover --to N</b> on the Active: the same hand-over to N; once N is seen Active for a dead interval this
/// member becomes Standby again.</item>
/// <item><b>up</b>: back from Maintenance to Standby (the replica stayed current: a Maintenance member keeps applying
/// the Active's changes).</item>
/// </list>
/// A Standby that hears a live Maintenance member name it takes over at once (no election, no hold); the other Standbys
/// hold their election while the named successor is alive and synchronized, so a lower-ranked member can be given the
/// role. When the successor does not become Active within ten dead intervals, the leaving member stops naming it and the
/// election decides as usual.
/// </summary>
public sealed partial class MembershipController
{
    private enum AdminKind
    {
        Down,
        Up,
        Failover,
    }

    private enum Handoff
    {
        None,
        ToThisMember,
        ToAnother,
    }

    private bool _adminDown;
    private byte _leavingTo;          // Active, handing the role to this member: the data-plane source holds
    private long _leaveSinceTimestamp;
    private double _handoverMs;
    private byte _namedSuccessor;     // in Maintenance: the member this one handed the role to (heartbeat priority field)
    private long _namedSinceTimestamp;
    private long _successorActiveSinceTimestamp;
    private TaskCompletionSource<AdminResult>? _admin;
    private AdminKind _adminKind;

    /// <summary>
    /// This member is Active and not handing the role over: its data-plane source may submit. False while an
    /// <c>admin down</c> or <c>admin failover</c> drains the pending changes to the successor.
    /// </summary>
    public bool Serving => State == MemberState.Active && Volatile.Read(ref _leavingTo) == 0;

    /// <summary>True while the member is administratively down (<c>clustersync admin down</c> until <c>admin up</c>).</summary>
    public bool AdministrativelyDown
    {
        get
        {
            lock (_sync)
            {
                return _adminDown;
            }
        }
    }

    /// <summary><c>clustersync admin down</c>: leave the Active role gracefully (if held) and stay out of elections.</summary>
    public Task<AdminResult> RequestDown()
    {
        lock (_sync)
        {
            if (Refusal() is { } busy)
            {
                return busy;
            }

            if (_adminDown)
            {
                return Answer(AdminOutcome.Done, $"already administratively down ({State})");
            }

            if (State == MemberState.Active)
            {
                if (_options.Mode != ClusterMode.HighAvailability)
                {
                    return Answer(AdminOutcome.Refused, "admin down of an Active member is supported in high availability only");
                }

                byte successor = BestStandby(CurrentPeers());
                if (successor == 0)
                {
                    return Answer(AdminOutcome.Refused, "no live Standby to take the Active role over: the cluster would be left without an Active member");
                }

                _adminDown = true;
                return BeginLeave(successor, AdminKind.Down);
            }

            _adminDown = true;
            if (State is MemberState.Standby or MemberState.Maintenance)
            {
                return Pending(AdminKind.Down); // the next tick publishes Maintenance
            }

            Log.Administratively(_logger, _engine.MemberId, "down");
            return Answer(AdminOutcome.Done, $"administratively down: the member is {State} and becomes Maintenance, not Standby, once synchronized");
        }
    }

    /// <summary><c>clustersync admin up</c>: back into the elections, as Standby.</summary>
    public Task<AdminResult> RequestUp()
    {
        lock (_sync)
        {
            if (Refusal() is { } busy)
            {
                return busy;
            }

            if (!_adminDown)
            {
                return Answer(AdminOutcome.Done, $"not administratively down ({State})");
            }

            _adminDown = false;
            if (State == MemberState.Maintenance)
            {
                return Pending(AdminKind.Up); // the next tick publishes Standby (once a named successor took over)
            }

            Log.Administratively(_logger, _engine.MemberId, "up");
            return Answer(AdminOutcome.Done, $"administratively up ({State})");
        }
    }

    /// <summary><c>clustersync admin failover --to N</c>: hand the Active role to member <paramref name="target"/>, then be Standby.</summary>
    public Task<AdminResult> RequestFailover(byte target)
    {
        lock (_sync)
        {
            if (Refusal() is { } busy)
            {
                return busy;
            }

            if (_options.Mode != ClusterMode.HighAvailability)
            {
                return Answer(AdminOutcome.Refused, "admin failover is for high availability (in load sharing every member is Active)");
            }

            if (target == _engine.MemberId)
            {
                return State == MemberState.Active
                    ? Answer(AdminOutcome.Done, "this member is already Active")
                    : Answer(AdminOutcome.Refused, $"this member is {State}: send the request to the Active member's control endpoint");
            }

            if (State != MemberState.Active)
            {
                return Answer(AdminOutcome.Refused, $"this member is {State}, not Active: send the request to the Active member's control endpoint");
            }

            var peers = CurrentPeers();
            var view = Find(peers, target);
            if (view.Id == 0)
            {
                return Answer(AdminOutcome.Refused, $"member {target} is not a member of this cluster");
            }

            if (!view.Alive || view.State != MemberState.Standby)
            {
                return Answer(AdminOutcome.Refused, $"member {target} is {(view.Alive ? view.State.ToString() : "not alive")}, not a live Standby");
            }

            return BeginLeave(target, AdminKind.Failover);
        }
    }

    /// <summary>Active, handing over: leave once the successor holds everything; give up past the handover limit.</summary>
    private void LeaveWhenHandedOver(ReadOnlySpan<MemberView> peers, long now)
    {
        byte successor = _leavingTo;
        if (successor == 0)
        {
            return;
        }

        var view = Find(peers, successor);
        if (!view.Alive || view.State != MemberState.Standby)
        {
            AbortLeave($"member {successor} is {(view.Alive ? view.State.ToString() : "not alive")}, no longer a live Standby");
            return;
        }

        if (_engine.HandedOverTo(successor))
        {
            _handoverMs = Elapsed(_leaveSinceTimestamp);
            _namedSuccessor = successor;
            _namedSinceTimestamp = now;
            _successorActiveSinceTimestamp = 0;
            _followedActive = successor; // it holds this member's table: no re-send when this member follows it
            Volatile.Write(ref _leavingTo, 0);
            Log.HandedRoleOver(_logger, _engine.MemberId, successor, _handoverMs);
            Publish(MemberState.Maintenance, $"{(_adminDown ? "admin down" : "admin failover")}: handed the Active role to member {successor}");
            return;
        }

        if (Elapsed(_leaveSinceTimestamp) > HandoverLimit.TotalMilliseconds)
        {
            AbortLeave($"member {successor} did not acknowledge every change within {HandoverLimit.TotalMilliseconds:F0} ms");
        }
    }

    /// <summary>Maintenance: follow the named successor until it serves, then (when no longer down) return to Standby.</summary>
    private void EvaluateMaintenance(ReadOnlySpan<MemberView> peers, long now)
    {
        byte successor = _namedSuccessor;
        if (successor != 0)
        {
            var view = Find(peers, successor);
            double deadMs = _engine.Options.DeadInterval.TotalMilliseconds;
            if (view.Alive && view.State == MemberState.Active)
            {
                if (_successorActiveSinceTimestamp == 0)
                {
                    _successorActiveSinceTimestamp = now;
                    double switchMs = (now - _namedSinceTimestamp) * 1000.0 / _time.TimestampFrequency;
                    Log.SuccessorActive(_logger, _engine.MemberId, successor, switchMs);
                    Complete(AdminOutcome.Done, _adminDown
                        ? $"administratively down (Maintenance); member {successor} is Active"
                        : $"member {successor} is Active; this member becomes Standby",
                        successor, switchMs);
                }
                else if (Elapsed(_successorActiveSinceTimestamp) >= deadMs)
                {
                    StopNaming(); // every peer has heard it Active by now
                }
            }
            else if (!view.Alive || view.State is not (MemberState.Standby or MemberState.Promoting) || Elapsed(_namedSinceTimestamp) > HandoverLimit.TotalMilliseconds)
            {
                if (_successorActiveSinceTimestamp == 0)
                {
                    string why = !view.Alive ? "it is not alive" : view.State is not (MemberState.Standby or MemberState.Promoting) ? $"it is {view.State}" : $"not Active within {HandoverLimit.TotalMilliseconds:F0} ms";
                    Log.SuccessorGaveUp(_logger, _engine.MemberId, successor, why);
                    Complete(AdminOutcome.Failed, $"member {successor} did not take the Active role over ({why}); the election decides", successor, 0);
                }

                StopNaming();
            }
        }

        if (!_adminDown && _namedSuccessor == 0)
        {
            Publish(MemberState.Standby, _adminKind == AdminKind.Failover ? "admin failover: the successor is Active" : "admin up");
        }
    }

    /// <summary>End of a tick: complete a request whose goal the tick reached.</summary>
    private void CompleteAdminIfDone()
    {
        if (_admin is null || _admin.Task.IsCompleted)
        {
            return;
        }

        if (_adminKind == AdminKind.Up && State == MemberState.Standby)
        {
            Log.Administratively(_logger, _engine.MemberId, "up");
            Complete(AdminOutcome.Done, "back in the elections: Standby", 0, 0);
        }
        else if (_adminKind == AdminKind.Down && State == MemberState.Maintenance && _namedSuccessor == 0 && _leavingTo == 0)
        {
            Log.Administratively(_logger, _engine.MemberId, "down");
            Complete(AdminOutcome.Done, "administratively down (Maintenance)", 0, 0);
        }
    }

    /// <summary>
    /// Standby: whether a live Maintenance member names a successor (it handed the Active role over) while no Active is
    /// alive: this member (take over now) or another live, synchronized member (hold the election until it serves).
    /// </summary>
    private Handoff HandedTheRole(ReadOnlySpan<MemberView> peers, out byte from)
    {
        from = 0;
        if (_adminDown)
        {
            Publish(MemberState.Maintenance);
            return Handoff.ToAnother;
        }

        byte named = 0;
        foreach (var p in peers)
        {
            if (p.Alive && p.State == MemberState.Active)
            {
                return Handoff.None;
            }

            if (p.Alive && p.State == MemberState.Maintenance && p.Priority != 0)
            {
                named = p.Priority;
                from = p.Id;
            }
        }

        if (named == 0)
        {
            return Handoff.None;
        }

        if (named == _engine.MemberId)
        {
            return Handoff.ToThisMember;
        }

        return Find(peers, named).Eligible ? Handoff.ToAnother : Handoff.None;
    }

    private Task<AdminResult> BeginLeave(byte successor, AdminKind kind)
    {
        _leaveSinceTimestamp = _time.GetTimestamp();
        Volatile.Write(ref _leavingTo, successor);
        Log.Leaving(_logger, _engine.MemberId, kind == AdminKind.Down ? "admin down" : "admin failover", successor);
        return Pending(kind);
    }

    private void AbortLeave(string reason)
    {
        if (_leavingTo == 0)
        {
            return;
        }

        Volatile.Write(ref _leavingTo, 0);
        if (_adminKind == AdminKind.Down)
        {
            _adminDown = false;
        }

        Log.LeaveAbandoned(_logger, _engine.MemberId, reason);
        Complete(AdminOutcome.Failed, $"still Active: {reason}", 0, 0);
    }

    private void StopNaming()
    {
        _namedSuccessor = 0;
        _engine.AdvertisedPriority = 0;
    }

    /// <summary>Another request or a hand-over is in progress: the refusal; else null.</summary>
    private Task<AdminResult>? Refusal()
        => _admin is { Task.IsCompleted: false } || _leavingTo != 0
            ? Answer(AdminOutcome.Refused, "another administrative request is in progress")
            : null;

    private Task<AdminResult> Pending(AdminKind kind)
    {
        _adminKind = kind;
        _handoverMs = 0;
        _admin = new TaskCompletionSource<AdminResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        return _admin.Task;
    }

    private Task<AdminResult> Answer(AdminOutcome outcome, string message) => Task.FromResult(new AdminResult(outcome, message, State));

    private void Complete(AdminOutcome outcome, string message, byte successor, double switchMs)
        => _admin?.TrySetResult(new AdminResult(outcome, message, State, successor, _handoverMs, switchMs));

    /// <summary>The node stops: a request still waiting fails.</summary>
    private void FailPendingAdmin()
    {
        lock (_sync)
        {
            _admin?.TrySetResult(new AdminResult(AdminOutcome.Failed, "the node is stopping", MemberState.Down));
        }
    }

    private MemberView[] CurrentPeers()
    {
        var views = new MemberView[_views.Length];
        int n = _engine.GetPeerViews(views);
        return views[..n];
    }

    private static MemberView Find(ReadOnlySpan<MemberView> peers, byte id)
    {
        foreach (var p in peers)
        {
            if (p.Id == id)
            {
                return p;
            }
        }

        return default;
    }

    private static byte BestStandby(ReadOnlySpan<MemberView> peers)
    {
        byte best = 0;
        MemberView bestView = default;
        foreach (var p in peers)
        {
            if (p.Alive && p.State == MemberState.Standby && (best == 0 || p.Outranks(bestView)))
            {
                best = p.Id;
                bestView = p;
            }
        }

        return best;
    }

    private static partial class Log
    {
        [LoggerMessage(1310, LogLevel.Warning, "Member {Member}: {Action}: handing the Active role to member {Successor}; the data-plane source holds until it acknowledged every change")]
        public static partial void Leaving(ILogger logger, byte member, string action, byte successor);

        [LoggerMessage(1311, LogLevel.Warning, "Member {Member}: member {Successor} acknowledged every change after {Milliseconds:F1} ms; leaving the Active role to it (Maintenance)")]
        public static partial void HandedRoleOver(ILogger logger, byte member, byte successor, double milliseconds);

        [LoggerMessage(1312, LogLevel.Error, "Member {Member}: hand-over abandoned, still Active: {Reason}")]
        public static partial void LeaveAbandoned(ILogger logger, byte member, string reason);

        [LoggerMessage(1313, LogLevel.Information, "Member {Member}: member {Successor} is Active {Milliseconds:F1} ms after the hand-over")]
        public static partial void SuccessorActive(ILogger logger, byte member, byte successor, double milliseconds);

        [LoggerMessage(1314, LogLevel.Error, "Member {Member}: member {Successor} did not take the Active role over ({Reason}); the election decides")]
        public static partial void SuccessorGaveUp(ILogger logger, byte member, byte successor, string reason);

        [LoggerMessage(1315, LogLevel.Warning, "Member {Member}: administratively {Direction}")]
        public static partial void Administratively(ILogger logger, byte member, string direction);
    }
}
