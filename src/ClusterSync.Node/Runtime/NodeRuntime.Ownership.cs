using System.Collections.Concurrent;
using ClusterSync.Connections;
using ClusterSync.Membership;
using ClusterSync.Workload;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Node.Runtime;

/// <summary>
/// Owner routing of the generated data plane in load sharing: the generator opens only connections this member owns
/// (as if the upstream switch's symmetric hash delivered them here), and when the owner set changes it drops the
/// connections that moved away and drives the ones this member took over (those the membership controller committed).
/// </summary>
public sealed partial class NodeRuntime
{
    private readonly ConcurrentQueue<(byte[] Owners, IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> Gained)> _ownershipChanges = new();

    private void RouteByOwnership(ChangeGenerator generator, MembershipController membership)
    {
        byte self = Engine.MemberId;
        generator.Accept = key => membership.OwnerOf(key) == self;
        membership.OwnershipChanged += (owners, gained) => _ownershipChanges.Enqueue((owners, gained));
    }

    /// <summary>On the generator thread: applies owner-set changes to the generator's live set.</summary>
    private void ApplyOwnershipChanges()
    {
        byte self = Engine.MemberId;
        while (_ownershipChanges.TryDequeue(out var change))
        {
            var owners = change.Owners;
            int dropped = _generator!.Retain(key => Ownership.OwnerOf(key, owners) == self);
            int added = _generator.AddLive(change.Gained.Select(c => c.Key));
            OwnershipLog.Rerouted(_logger, self, string.Join(',', owners), dropped, added, _generator.LiveCount);
        }
    }

    private static partial class OwnershipLog
    {
        [LoggerMessage(4020, LogLevel.Information, "Member {Member}: owners now {Owners}; the generator dropped {Dropped} connections that moved away and drives {Added} taken over ({Live} live)")]
        public static partial void Rerouted(ILogger logger, byte member, string owners, int dropped, int added, int live);
    }
}
