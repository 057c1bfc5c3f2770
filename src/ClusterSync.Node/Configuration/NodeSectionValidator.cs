using System.Net;

namespace ClusterSync.Node.Configuration;

/// <summary>
/// The <c>node</c> section: which member this is (<c>memberId</c>), the control endpoint (its port clashes with no
/// sync or full sync port; its token file, loaded here once) and the state directory (the epoch file). Collects every error.
/// </summary>
internal static class NodeSectionValidator
{
    /// <returns>The index of this member in <c>cluster.members</c> (-1: none), the control token, the state directory, the control endpoint's HTTPS certificate (null: HTTP).</returns>
    public static (int SelfIndex, string? ControlToken, string StateDirectory, System.Security.Cryptography.X509Certificates.X509Certificate2? ControlCertificate) Validate(NodeConfig c, string file, MemberTopology topology, ConfigurationErrors errors)
    {
        var members = c.Cluster.Members;
        int selfIndex = -1;
        for (int i = 0; i < members.Count; i++)
        {
            if (members[i].Id == c.Node.MemberId)
            {
                selfIndex = i;
                break;
            }
        }

        if (selfIndex < 0)
        {
            errors.Add("node.memberId", $"{c.Node.MemberId} is not the id of one of cluster.members (ids: {string.Join(", ", members.Select(m => m.Id))})");
        }

        CheckControlPort(c, topology, selfIndex, errors);
        ControlAddressValidator.Validate(c.Node.Control, errors);
        var token = LoadControlToken(c.Node.Control, file, errors);
        var certificate = c.Node.Control.Port == 0 ? null : ControlAddressValidator.LoadCertificate(c.Node.Control, file, errors);
        return (selfIndex, token, StateDirectory(c.Node, file, errors), certificate);
    }

    private static void CheckControlPort(NodeConfig c, MemberTopology topology, int selfIndex, ConfigurationErrors errors)
    {
        int controlPort = c.Node.Control.Port;
        if (controlPort is < 0 or > 65535)
        {
            errors.Add("node.control.port", $"expected a TCP port 1-65535 on node.control.address, or 0 to disable the control endpoint, found {controlPort}");
            return;
        }

        if (controlPort == 0)
        {
            return;
        }

        foreach (var (i, ep) in topology.SyncEndPoints.Where(s => s.EndPoint.Port == controlPort))
        {
            errors.Add("node.control.port", $"{controlPort} is also the sync port of cluster.members[{i}] ({ep}); expected a port of its own");
        }

        var members = c.Cluster.Members;
        for (int i = 0; i < members.Count; i++)
        {
            if (topology.EndPoint(i) is { } fe && members[i].FullSyncPort == controlPort && (i == selfIndex || IPAddress.IsLoopback(fe.Address)))
            {
                errors.Add("node.control.port", $"{controlPort} is also the full sync port of cluster.members[{i}] ({fe.Address}:{controlPort}, TCP); expected a port of its own");
            }
        }
    }

    private static string? LoadControlToken(ControlConfig control, string file, ConfigurationErrors errors)
    {
        bool hasTokenFile = !string.IsNullOrWhiteSpace(control.TokenFile);
        if (hasTokenFile && control.AllowUnauthenticated)
        {
            errors.Add("node.control.allowUnauthenticated", "'true' contradicts node.control.tokenFile; expected either a token file or 'allowUnauthenticated: true', not both");
        }
        else if (control.RequireTokenForReads && !hasTokenFile)
        {
            errors.Add("node.control.requireTokenForReads", "'true' needs node.control.tokenFile (the token the reads must present)");
        }
        else if (hasTokenFile)
        {
            try
            {
                return ControlTokenFile.Load(Path.GetFullPath(control.TokenFile!, Path.GetDirectoryName(file)!));
            }
            catch (ConfigurationException ex)
            {
                errors.Add("node.control.tokenFile", ex);
            }
        }

        return null;
    }

    /// <summary><c>node.stateDirectory</c>: an existing directory (the node writes its epoch file there at start); default the configuration file's.</summary>
    private static string StateDirectory(NodeSection node, string file, ConfigurationErrors errors)
    {
        string stateDirectory = Path.GetDirectoryName(file)!;
        if (node.StateDirectory is not { } state)
        {
            return stateDirectory;
        }

        if (string.IsNullOrWhiteSpace(state))
        {
            errors.Add("node.stateDirectory", "expected the path of a directory this node may write (or no setting: the configuration file's directory), found an empty path");
            return stateDirectory;
        }

        stateDirectory = Path.GetFullPath(state, Path.GetDirectoryName(file)!);
        if (!Directory.Exists(stateDirectory))
        {
            errors.Add("node.stateDirectory", $"{stateDirectory}: directory not found; expected an existing directory this node may write");
        }

        return stateDirectory;
    }
}
