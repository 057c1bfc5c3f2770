using ClusterSync.Protocol;
using ClusterSync.Transport;

namespace ClusterSync.Engine;

/// <summary>
/// Sync links (ClusterXL's "sync on the lowest VLAN"): when the channel is a <see cref="MultiLinkChannel"/>, heartbeats
/// go on every link, each carrying its link index and the links on which this member hears the target; link health
/// (<see cref="LinkHealth"/>) is judged on every control tick and each peer's data, acks and NACKs take the lowest
/// healthy link. A datagram sent on a link that turned out dead is repaired as any lost datagram is: the heartbeats
/// on the healthy link announce the last sequence, the peer NACKs the gap, and the resend buffer (which the send
/// window keeps larger than what is in flight) answers on the new link.
/// </summary>
public sealed partial class SyncEngine
{
    private MultiLinkChannel? _multi;
    private LinkHealth? _links;

    /// <summary>Number of sync links (1 unless the channel is a <see cref="MultiLinkChannel"/>).</summary>
    public int LinkCount => _links?.LinkCount ?? 1;

    /// <summary>Every link's state toward the peer at <paramref name="peerIndex"/>; empty with a single link.</summary>
    public LinkStatus[] GetLinkStatus(int peerIndex) => _links?.Status(peerIndex, _time.GetTimestamp()) ?? [];

    /// <summary>Times the peer's traffic moved to another link.</summary>
    public long LinkSwitches(int peerIndex) => _links?.Switches(peerIndex) ?? 0;

    private void InitLinks(IDatagramChannel channel)
    {
        _multi = channel as MultiLinkChannel;
        if (_multi is null)
        {
            return;
        }

        _links = new LinkHealth(_peers.Length, _multi.LinkIds, _options.DeadInterval, _time)
        {
            LinkChanged = OnLinkChanged,
            Switched = OnLinkSwitched,
        };
    }

    private void SendHeartbeatsOnLinks(Span<byte> body, ulong last, ulong oldest)
    {
        long now = _time.GetTimestamp();
        for (int i = 0; i < _peers.Length; i++)
        {
            byte heard = _links!.HeardMask(i, now);
            for (int l = 0; l < _links.LinkCount; l++)
            {
                // One sealed heartbeat per link, each with its own control sequence: a copy on a second link is not a replay.
                HeartbeatMessage.Write(body, last, oldest, AdvertisedState, AdvertisedPriority, (byte)l, heard);
                SendControl(MessageType.Heartbeat, body, i, l);
            }
        }
    }

    /// <summary>An authenticated heartbeat from <paramref name="peer"/> says it was sent on <paramref name="link"/> (receiver thread).</summary>
    private void NoteHeartbeatLink(PeerState peer, byte link, byte heardLinks)
    {
        if (_links is null)
        {
            return;
        }

        if (link != _multi!.LastReceivedLink)
        {
            // Sent on one link, arrived on another (crossed cabling or a replay onto another link): no evidence for either.
            _counters.LinkMismatches++;
            return;
        }

        _links.Heard(peer.PeerIndex, link, _time.GetTimestamp());
        _links.Reported(peer.PeerIndex, heardLinks);
    }

    private void OnLinkChanged(int peer, int link, bool up)
    {
        if (up)
        {
            _counters.LinkUps++;
            Log.LinkUp(_logger, _peers[peer].MemberId, _links!.LinkId(link));
        }
        else
        {
            _counters.LinkDowns++;
            Log.LinkDown(_logger, _peers[peer].MemberId, _links!.LinkId(link), (long)_options.DeadInterval.TotalMilliseconds);
        }
    }

    private void OnLinkSwitched(int peer, int from, int to)
    {
        _multi!.Route(peer, to);
        _counters.LinkSwitches++;
        Log.LinkSwitched(_logger, _peers[peer].MemberId, _links!.LinkId(from), _links.LinkId(to));
        SignalSender();
    }

    /// <summary>A clean stop: heartbeats with state Down on every link, so peers react at once instead of after the dead interval.</summary>
    private void SendFarewell()
    {
        AdvertisedState = (byte)Membership.MemberState.Down;
        for (int i = 0; i < 2; i++)
        {
            SendHeartbeats();
        }

        Log.Farewell(_logger, MemberId);
    }
}
