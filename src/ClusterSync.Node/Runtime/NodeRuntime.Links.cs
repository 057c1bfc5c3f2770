namespace ClusterSync.Node.Runtime;

public sealed partial class NodeRuntime
{
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
                Address = l < _config.PeerLinkEndPoints.Count ? _config.PeerLinkEndPoints[l][peerIndex].ToString() : "",
                Up = s.Up,
                LastHeardMs = s.HeardAgeMs,
                PeerHearsUs = s.PeerHearsUs,
                Carrying = s.Carrying,
            });
        }

        return result;
    }
}
