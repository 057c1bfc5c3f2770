using ClusterSync.FullSync;
using ClusterSync.Membership;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Node.Runtime;

/// <summary>
/// Join and resync: a member moving to Syncing pulls a full sync (<see cref="JoinAsync"/>), a peer's "resync needed"
/// schedules a pull from it; both only schedule on the thread that raised them, and the pulls run one at a time on a
/// worker task.
/// </summary>
public sealed partial class NodeRuntime
{
    private readonly object _pullLock = new();
    private readonly SortedSet<byte> _pullPeers = [];
    private bool _joinPending;
    private bool _pullRunning;
    private Task _pullWorker = Task.CompletedTask;

    private void OnStateChanged(MemberState from, MemberState to)
    {
        // Raised on the engine's timer thread inside the controller's lock: only schedule.
        if (to == MemberState.Syncing)
        {
            RequestPull(0);
        }
    }

    private void OnResyncNeeded(byte peer, ulong epoch)
    {
        // Raised on the receiver thread: only schedule.
        Log.ResyncScheduled(_logger, peer, epoch);
        RequestPull(peer);
    }

    /// <summary>Schedules a pull from <paramref name="peer"/> (0: the join pull from the best synchronized peer).</summary>
    private void RequestPull(byte peer)
    {
        lock (_pullLock)
        {
            if (peer == 0)
            {
                _joinPending = true;
            }
            else
            {
                _pullPeers.Add(peer);
            }

            if (_pullRunning || _stop.IsCancellationRequested)
            {
                return;
            }

            _pullRunning = true;
            _pullWorker = Task.Run(PullLoopAsync);
        }
    }

    private async Task PullLoopAsync()
    {
        while (true)
        {
            bool join;
            byte peer = 0;
            lock (_pullLock)
            {
                if (_stop.IsCancellationRequested || (!_joinPending && _pullPeers.Count == 0))
                {
                    _pullRunning = false;
                    return;
                }

                join = _joinPending;
                if (join)
                {
                    _joinPending = false;
                }
                else
                {
                    peer = _pullPeers.Min;
                    _pullPeers.Remove(peer);
                }
            }

            try
            {
                if (join)
                {
                    await JoinAsync().ConfigureAwait(false);
                }
                else if (_fullSyncClient is not null && PeerIndex(peer) is int index and >= 0)
                {
                    await _fullSyncClient.PullAsync(index, _stop.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            catch (ObjectDisposedException) when (_stop.IsCancellationRequested)
            {
            }
        }
    }

    /// <summary>
    /// The join, as <see cref="JoinPlanner"/> decides: pull from the Active (or, with no Active for a while, the best
    /// Standby) until one pull succeeds; start as first member only when no synchronized peer exists (never on a brief
    /// view: a failed or refused pull is retried).
    /// </summary>
    private async Task JoinAsync()
    {
        var views = new MemberView[Model.PeerMembers.Count];
        var token = _stop.Token;
        var planner = new JoinPlanner(Engine.MemberId, (byte)Model.Self.Priority, Engine.Options.DeadInterval, _time,
            aloneAfter: Model.Config.Cluster.AloneAfter);
        while (!token.IsCancellationRequested)
        {
            int n = Engine.GetPeerViews(views);
            var decision = planner.Next(views.AsSpan(0, n));
            if (decision.Step == JoinStep.FirstMember)
            {
                Log.FirstMember(_logger, Engine.MemberId, decision.Reason);
                _membership!.MarkSynchronized();
                return;
            }

            if (decision.Step == JoinStep.Wait)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), _time, token).ConfigureAwait(false);
                continue;
            }

            if (_fullSyncClient is null)
            {
                Log.NoFullSync(_logger, Engine.MemberId, decision.Source);
                _membership!.MarkSynchronized();
                return;
            }

            var result = await _fullSyncClient.PullAsync(PeerIndex(decision.Source), token).ConfigureAwait(false);
            if (result.Succeeded)
            {
                Log.Joined(_logger, Engine.MemberId, decision.Source, decision.SourceState, result.Entries);
                _membership!.MarkSynchronized();
                return;
            }

            Log.JoinPullFailed(_logger, decision.Source, result.Status, result.Error ?? "");
            await Task.Delay(TimeSpan.FromMilliseconds(200), _time, token).ConfigureAwait(false);
        }
    }

    private int PeerIndex(byte member)
    {
        for (int i = 0; i < Model.PeerMembers.Count; i++)
        {
            if (Model.PeerMembers[i].Id == member)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Waits for the pull in progress (bounded): part of the shutdown.</summary>
    private async Task StopPullsAsync()
    {
        Engine.ResyncNeeded -= OnResyncNeeded;
        try
        {
            await _pullWorker.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }
}
