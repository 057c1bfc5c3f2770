using System.Collections;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text.Json;
using ClusterSync.Policy;
using ClusterSync.Security;
using ClusterSync.Transport;

namespace ClusterSync.Node.Configuration;

/// <summary>
/// Reads a node configuration file and validates it as a whole: every problem is reported at once, each as
/// <c>FILE: json.path: what was expected</c>, in one <see cref="ConfigurationException"/> (exit code 2).
/// </summary>
public static class NodeConfigLoader
{
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        Converters = { new DurationJsonConverter() },
    };

    private static readonly NullabilityInfoContext s_nullability = new();

    public static LoadedNodeConfig Load(string path) => Load(path, null);

    /// <summary>Loads, lets <paramref name="adjust"/> override settings (for example <c>clustersync replay</c>'s data plane), then validates.</summary>
    public static LoadedNodeConfig Load(string path, Func<NodeConfig, NodeConfig>? adjust)
    {
        var full = System.IO.Path.GetFullPath(path);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(full);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationException($"{full}: cannot read the configuration file: {ex.Message}");
        }

        var errors = new List<string>();
        try
        {
            using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ConfigurationException($"{full}: expected a JSON object at the top level, found {doc.RootElement.ValueKind}");
            }

            CheckUnknown(doc.RootElement, typeof(NodeConfig), "", errors);
        }
        catch (JsonException ex)
        {
            throw new ConfigurationException($"{full}: malformed JSON at line {ex.LineNumber + 1}, position {ex.BytePositionInLine + 1}: {Clean(ex)}");
        }

        NodeConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<NodeConfig>(bytes, JsonOptions);
        }
        catch (JsonException ex)
        {
            errors.Add($"{ConfigPath(ex.Path)}: {Clean(ex)} (line {ex.LineNumber + 1}, position {ex.BytePositionInLine + 1})");
            throw Fail(full, errors);
        }

        // Unknown settings are reported together with everything else; nulls stop here (nothing to validate).
        var nulls = new List<string>();
        CheckNulls(config!, "", nulls);
        if (nulls.Count > 0)
        {
            throw Fail(full, [.. errors, .. nulls]);
        }

        var loaded = Validate(adjust is null ? config! : adjust(config!), full, errors);
        if (errors.Count > 0 || loaded is null)
        {
            throw Fail(full, errors);
        }

        return loaded;
    }

    private static ConfigurationException Fail(string file, List<string> errors)
        => new(errors.Select(e => $"{file}: {e}").ToList());

    private static LoadedNodeConfig? Validate(NodeConfig c, string file, List<string> errors)
    {
        // cluster.members
        var members = c.Cluster.Members;
        var endpoints = new IPEndPoint?[members.Count];
        if (members.Count == 0)
        {
            errors.Add("cluster.members: expected at least one member (this node), each {\"id\": 1, \"address\": \"10.0.0.1:8116\"}");
        }

        var ids = new Dictionary<int, int>();
        var addresses = new Dictionary<IPEndPoint, string>();
        var memberLinks = new List<(byte Id, IPEndPoint EndPoint)>?[members.Count];
        for (int i = 0; i < members.Count; i++)
        {
            var m = members[i];
            var p = $"cluster.members[{i}]";
            if (m.Id is < 1 or > 255)
            {
                errors.Add($"{p}.id: expected a member id from 1 to 255, found {m.Id}");
            }
            else if (!ids.TryAdd(m.Id, i))
            {
                errors.Add($"{p}.id: duplicate member id {m.Id} (also cluster.members[{ids[m.Id]}].id)");
            }

            memberLinks[i] = ParseLinks(m, p, addresses, errors);
            endpoints[i] = memberLinks[i]?[0].EndPoint;

            if (m.Priority is < 0 or > 255)
            {
                errors.Add($"{p}.priority: expected 0 to 255, found {m.Priority}");
            }

            if (m.FullSyncPort is < 1 or > 65535)
            {
                errors.Add($"{p}.fullSyncPort: expected a TCP port 1-65535, found {m.FullSyncPort}");
            }
        }

        // Sync links: every member has the same link ids (a link joins the same network on every member).
        int first = Array.FindIndex(memberLinks, l => l is not null);
        for (int i = first + 1; first >= 0 && i < members.Count; i++)
        {
            if (memberLinks[i] is { } links && !links.Select(l => l.Id).SequenceEqual(memberLinks[first]!.Select(l => l.Id)))
            {
                errors.Add($"cluster.members[{i}].{(members[i].Links.Count == 0 ? "address" : "links")}: expected the sync link ids of cluster.members[{first}] ({LinkIdList(memberLinks[first]!)}), found ({LinkIdList(links)}); every member needs the same links");
            }
        }

        var syncEndPoints = Enumerable.Range(0, members.Count).SelectMany(j => (memberLinks[j] ?? []).Select(l => (Member: j, l.EndPoint))).ToList();

        // Full sync ports: TCP on the member's IP; no clash with a sync port on the same IP, another member's full sync
        // endpoint on the same IP, or (for a loopback member) the control endpoint.
        var fullSyncEndPoints = new Dictionary<IPEndPoint, int>();
        for (int i = 0; i < members.Count; i++)
        {
            if (endpoints[i] is not { } ep || members[i].FullSyncPort is < 1 or > 65535)
            {
                continue;
            }

            var fs = new IPEndPoint(ep.Address, members[i].FullSyncPort);
            var p = $"cluster.members[{i}].fullSyncPort";
            if (!fullSyncEndPoints.TryAdd(fs, i))
            {
                errors.Add($"{p}: {fs} is also the full sync endpoint of cluster.members[{fullSyncEndPoints[fs]}]; expected a port of its own");
            }

            foreach (var (j, other) in syncEndPoints)
            {
                if (other.Equals(fs))
                {
                    errors.Add($"{p}: {members[i].FullSyncPort} is also the sync port of cluster.members[{j}] ({other}); expected a port of its own");
                }
            }
        }

        if (string.IsNullOrWhiteSpace(c.Cluster.Transport))
        {
            errors.Add($"cluster.transport: expected '{ClusterConfig.TransportUdp}' or the name of a transport plugin, found an empty name");
        }
        else if (c.Cluster.Transport != ClusterConfig.TransportUdp)
        {
            for (int i = 0; i < members.Count; i++)
            {
                if (string.IsNullOrWhiteSpace(members[i].TransportAddress))
                {
                    errors.Add($"cluster.members[{i}].transportAddress: required with cluster.transport '{c.Cluster.Transport}' (the member's address on that transport)");
                }

                if (members[i].Links.Count > 1)
                {
                    errors.Add($"cluster.members[{i}].links: several sync links need cluster.transport '{ClusterConfig.TransportUdp}'");
                }
            }
        }

        ClusterSync.Membership.ClusterMode mode = ClusterSync.Membership.ClusterMode.HighAvailability;
        if (c.Cluster.Mode == ClusterConfig.ModeLoadSharing)
        {
            mode = ClusterSync.Membership.ClusterMode.LoadSharing;
        }
        else if (c.Cluster.Mode != ClusterConfig.ModeHighAvailability)
        {
            errors.Add($"cluster.mode: expected '{ClusterConfig.ModeHighAvailability}' or '{ClusterConfig.ModeLoadSharing}', found '{c.Cluster.Mode}'");
        }

        // node
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
            errors.Add($"node.memberId: {c.Node.MemberId} is not the id of one of cluster.members (ids: {string.Join(", ", members.Select(m => m.Id))})");
        }

        int controlPort = c.Node.Control.Port;
        if (controlPort is < 0 or > 65535)
        {
            errors.Add($"node.control.port: expected a TCP port 1-65535 on 127.0.0.1, or 0 to disable the control endpoint, found {controlPort}");
        }
        else if (controlPort != 0)
        {
            foreach (var (i, ep) in syncEndPoints.Where(s => s.EndPoint.Port == controlPort))
            {
                errors.Add($"node.control.port: {controlPort} is also the sync port of cluster.members[{i}] ({ep}); expected a port of its own");
            }

            for (int i = 0; i < members.Count; i++)
            {
                if (endpoints[i] is { } fe && members[i].FullSyncPort == controlPort && (i == selfIndex || IPAddress.IsLoopback(fe.Address)))
                {
                    errors.Add($"node.control.port: {controlPort} is also the full sync port of cluster.members[{i}] ({fe.Address}:{controlPort}, TCP); expected a port of its own");
                }
            }
        }

        string? controlToken = null;
        var control = c.Node.Control;
        bool hasTokenFile = !string.IsNullOrWhiteSpace(control.TokenFile);
        if (hasTokenFile && control.AllowUnauthenticated)
        {
            errors.Add("node.control.allowUnauthenticated: 'true' contradicts node.control.tokenFile; expected either a token file or 'allowUnauthenticated: true', not both");
        }
        else if (control.RequireTokenForReads && !hasTokenFile)
        {
            errors.Add("node.control.requireTokenForReads: 'true' needs node.control.tokenFile (the token the reads must present)");
        }
        else if (hasTokenFile)
        {
            try
            {
                controlToken = ControlTokenFile.Load(System.IO.Path.GetFullPath(control.TokenFile!, System.IO.Path.GetDirectoryName(file)!));
            }
            catch (ConfigurationException ex)
            {
                errors.AddRange(ex.Errors.Select(e => $"node.control.tokenFile: {e}"));
            }
        }

        // key
        ClusterKey? key = null;
        bool hasKeyFile = !string.IsNullOrWhiteSpace(c.Cluster.KeyFile);
        if (c.Cluster.Insecure && hasKeyFile)
        {
            errors.Add("cluster.insecure: 'true' contradicts cluster.keyFile; expected either a key file or 'insecure: true', not both");
        }
        else if (!c.Cluster.Insecure && !hasKeyFile)
        {
            errors.Add("cluster.keyFile: expected the path of the cluster key file (make one with 'clustersync keygen --out FILE'); running without encryption needs 'cluster.insecure: true', set explicitly");
        }
        else if (hasKeyFile)
        {
            var keyPath = System.IO.Path.GetFullPath(c.Cluster.KeyFile!, System.IO.Path.GetDirectoryName(file)!);
            if (!File.Exists(keyPath))
            {
                errors.Add($"cluster.keyFile: {keyPath}: file not found; expected a key file made by 'clustersync keygen --out {c.Cluster.KeyFile}'");
            }
            else
            {
                try
                {
                    key = ClusterKey.Load(keyPath);
                }
                catch (ConfigurationException ex)
                {
                    errors.AddRange(ex.Errors.Select(e => $"cluster.keyFile: {e}"));
                }
            }
        }

        // sync: the engine's own validation of its knobs (identity and policy are checked above and below).
        var knobs = c.Sync.ToEngineOptions(1, [], insecure: true, new PolicyOptions());
        errors.AddRange(knobs.Validate("sync"));
        if (c.Sync.SocketBufferBytes is < 64 * 1024 or > 1 << 30)
        {
            errors.Add($"sync.socketBufferBytes: expected 65536 to 1073741824, found {c.Sync.SocketBufferBytes}");
        }

        // cluster.aloneAfter: shorter than the listening a starting member does anyway (three dead intervals) would
        // have no effect; the upper bound keeps a typo from leaving a lone member waiting for days.
        double minAloneMs = c.Sync.HeartbeatInterval.TotalMilliseconds * c.Sync.DeadAfterMissedHeartbeats * 3;
        if (!(c.Cluster.AloneAfter.TotalMilliseconds >= minAloneMs && c.Cluster.AloneAfter <= ClusterConfig.MaxAloneAfter))
        {
            errors.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"cluster.aloneAfter: expected a duration from three dead intervals ({minAloneMs} ms: sync.heartbeatInterval × sync.deadAfterMissedHeartbeats × 3) up to 1h, found {DurationJsonConverter.Format(c.Cluster.AloneAfter)}"));
        }

        // node.stateDirectory: an existing directory (the node writes its epoch file there at start).
        string stateDirectory = System.IO.Path.GetDirectoryName(file)!;
        if (c.Node.StateDirectory is { } state)
        {
            if (string.IsNullOrWhiteSpace(state))
            {
                errors.Add("node.stateDirectory: expected the path of a directory this node may write (or no setting: the configuration file's directory), found an empty path");
            }
            else
            {
                stateDirectory = System.IO.Path.GetFullPath(state, System.IO.Path.GetDirectoryName(file)!);
                if (!Directory.Exists(stateDirectory))
                {
                    errors.Add($"node.stateDirectory: {stateDirectory}: directory not found; expected an existing directory this node may write");
                }
            }
        }

        // policy
        errors.AddRange(c.Policy.Validate("policy"));
        errors.AddRange(c.Plugins.Validate("plugins"));
        AdaptiveNodeConfig.Validate(c, file, errors); // adaptive, telemetry

        // dataPlane
        uint sourceBase = 0;
        var dp = c.DataPlane;
        if (dp.Source is not (DataPlaneConfig.SourceGenerator or DataPlaneConfig.SourceApi or DataPlaneConfig.SourceNone or DataPlaneConfig.SourceFeed or DataPlaneConfig.SourcePlugin))
        {
            errors.Add($"dataPlane.source: expected 'generator', 'api', 'feed', 'plugin' or 'none', found '{dp.Source}'");
        }
        else if (dp.Source == DataPlaneConfig.SourcePlugin && string.IsNullOrWhiteSpace(dp.Plugin))
        {
            errors.Add("dataPlane.plugin: expected the name of a data-plane plugin (for example 'trace-replay') for source 'plugin'");
        }
        else if (dp.Source != DataPlaneConfig.SourcePlugin && (dp.Plugin is not null || dp.Settings is not null))
        {
            errors.Add($"dataPlane.{(dp.Plugin is not null ? "plugin" : "settings")}: only used with source 'plugin', found source '{dp.Source}'");
        }
        else if (dp.Source == DataPlaneConfig.SourcePlugin && dp.CommitTimeoutSeconds is < 1 or > 3600)
        {
            errors.Add($"dataPlane.commitTimeoutSeconds: expected 1 to 3600, found {dp.CommitTimeoutSeconds}");
        }
        else if (dp.Source == DataPlaneConfig.SourceFeed && dp.FeedPort is < 1 or > 65535)
        {
            errors.Add($"dataPlane.feedPort: expected a TCP port 1 to 65535 for source 'feed', found {dp.FeedPort}");
        }
        else if (dp.Source == DataPlaneConfig.SourceGenerator)
        {
            var g = dp.Generator;
            if (g.Connections is < 1 or > 50_000_000)
            {
                errors.Add($"dataPlane.generator.connections: expected 1 to 50000000, found {g.Connections}");
            }

            if (!(g.ChangesPerSecond > 0 && g.ChangesPerSecond <= 10_000_000))
            {
                errors.Add($"dataPlane.generator.changesPerSecond: expected a rate in (0, 10000000], found {g.ChangesPerSecond}");
            }

            if (g.MaxChanges < 0)
            {
                errors.Add($"dataPlane.generator.maxChanges: expected 0 (no limit) or a positive count, found {g.MaxChanges}");
            }

            if (!(g.Ipv6Share >= 0 && g.Ipv6Share <= 1))
            {
                errors.Add($"dataPlane.generator.ipv6Share: expected a share from 0 to 1, found {g.Ipv6Share}");
            }

            if (!IPAddress.TryParse(g.SourceBase, out var b) || b.AddressFamily != AddressFamily.InterNetwork)
            {
                errors.Add($"dataPlane.generator.sourceBase: expected an IPv4 address like '10.0.0.0', found '{g.SourceBase}'");
            }
            else
            {
                sourceBase = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b.GetAddressBytes());
            }
        }

        if (errors.Count > 0 || selfIndex < 0 || endpoints.Any(e => e is null))
        {
            return null;
        }

        var peers = Enumerable.Range(0, members.Count).Where(i => i != selfIndex).ToList();
        var self = members[selfIndex];
        var engine = c.Sync.ToEngineOptions((byte)self.Id, peers.Select(i => (byte)members[i].Id).ToList(), c.Cluster.Insecure, c.Policy);
        return new LoadedNodeConfig(file, c, key, self, selfIndex, endpoints[selfIndex]!, peers.Select(i => members[i]).ToList(),
            peers.Select(i => endpoints[i]!).ToList(), engine, sourceBase)
        {
            FullSyncEndPoint = new IPEndPoint(endpoints[selfIndex]!.Address, self.FullSyncPort),
            PeerFullSyncEndPoints = peers.Select(i => new IPEndPoint(endpoints[i]!.Address, members[i].FullSyncPort)).ToList(),
            Mode = mode,
            EpochFilePath = System.IO.Path.Combine(stateDirectory, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"clustersync-member{self.Id}.epoch")),
            ControlToken = controlToken,
            LinkIds = memberLinks[selfIndex]!.Select(l => l.Id).ToList(),
            LocalLinkEndPoints = memberLinks[selfIndex]!.Select(l => l.EndPoint).ToList(),
            PeerLinkEndPoints = Enumerable.Range(0, memberLinks[selfIndex]!.Count).Select(l => (IReadOnlyList<IPEndPoint>)peers.Select(i => memberLinks[i]![l].EndPoint).ToList()).ToList(),
        };
    }

    /// <summary>
    /// A member's sync links, lowest id first: its single <c>address</c> (link id 0) or its <c>links</c>. Null when one
    /// is invalid (every problem is added to <paramref name="errors"/>); addresses must be unique across the cluster.
    /// </summary>
    private static List<(byte Id, IPEndPoint EndPoint)>? ParseLinks(MemberConfig m, string p, Dictionary<IPEndPoint, string> addresses, List<string> errors)
    {
        var given = m.Links.Count == 0
            ? [(Id: 0, Address: m.Address, Path: $"{p}.address", IdPath: $"{p}.address")]
            : m.Links.Select((l, j) => (l.Id, l.Address, Path: $"{p}.links[{j}].address", IdPath: $"{p}.links[{j}].id")).ToList();
        bool valid = true;
        if (m.Links.Count > 0 && m.Address.Length > 0)
        {
            errors.Add($"{p}.address: expected either 'address' (one sync link) or 'links', not both");
            valid = false;
        }

        if (m.Links.Count > Protocol.HeartbeatMessage.MaxLinks)
        {
            errors.Add($"{p}.links: expected 1 to {Protocol.HeartbeatMessage.MaxLinks} sync links, found {m.Links.Count}");
            valid = false;
        }

        var result = new List<(byte Id, IPEndPoint EndPoint)>();
        var linkIds = new HashSet<int>();
        foreach (var (id, address, path, idPath) in given)
        {
            if (id is < 0 or > 255)
            {
                errors.Add($"{idPath}: expected a sync link id from 0 to 255, found {id}");
                valid = false;
            }
            else if (!linkIds.Add(id))
            {
                errors.Add($"{idPath}: duplicate sync link id {id}; expected each link of a member once");
                valid = false;
            }

            if (!UdpDatagramChannel.TryParseEndPoint(address, out var ep, out var error))
            {
                errors.Add($"{path}: {error}");
                valid = false;
            }
            else if (ep.Address.Equals(IPAddress.Any) || ep.Address.Equals(IPAddress.IPv6Any))
            {
                errors.Add($"{path}: expected an address the other members can send to, found the wildcard '{address}'");
                valid = false;
            }
            else if (!addresses.TryAdd(ep, path))
            {
                errors.Add($"{path}: duplicate address and port {ep} (also {addresses[ep]})");
                valid = false;
            }
            else
            {
                result.Add(((byte)id, ep));
            }
        }

        return valid ? [.. result.OrderBy(l => l.Id)] : null;
    }

    private static string LinkIdList(List<(byte Id, IPEndPoint EndPoint)> links) => string.Join(", ", links.Select(l => l.Id));

    /// <summary>Every property of the JSON that no options record has, with its path and the names that would fit.</summary>
    private static void CheckUnknown(JsonElement element, Type type, string path, List<string> errors)
    {
        if (ElementType(type) is { } itemType)
        {
            if (element.ValueKind == JsonValueKind.Array)
            {
                int i = 0;
                foreach (var item in element.EnumerateArray())
                {
                    CheckUnknown(item, itemType, $"{path}[{i++}]", errors);
                }
            }

            return;
        }

        if (!IsOptionsRecord(type) || element.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        var properties = Settable(type).ToDictionary(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name), StringComparer.OrdinalIgnoreCase);
        foreach (var property in element.EnumerateObject())
        {
            var p = path.Length == 0 ? property.Name : $"{path}.{property.Name}";
            if (properties.TryGetValue(property.Name, out var info))
            {
                CheckUnknown(property.Value, info.PropertyType, p, errors);
            }
            else
            {
                errors.Add($"{p}: unknown setting; expected one of {string.Join(", ", properties.Keys)}");
            }
        }
    }

    /// <summary>Every <c>null</c> where the options records allow none (<c>"cluster": null</c>, a null list item).</summary>
    private static void CheckNulls(object value, string path, List<string> errors)
    {
        foreach (var p in Settable(value.GetType()))
        {
            var name = path.Length == 0 ? JsonNamingPolicy.CamelCase.ConvertName(p.Name) : $"{path}.{JsonNamingPolicy.CamelCase.ConvertName(p.Name)}";
            var v = p.GetValue(value);
            if (v is null)
            {
                if (s_nullability.Create(p).ReadState != NullabilityState.Nullable)
                {
                    errors.Add($"{name}: expected a value, found null");
                }

                continue;
            }

            if (ElementType(p.PropertyType) is { } itemType && v is IEnumerable items)
            {
                int i = 0;
                foreach (var item in items)
                {
                    if (item is null)
                    {
                        errors.Add($"{name}[{i}]: expected an object, found null");
                    }
                    else if (IsOptionsRecord(itemType))
                    {
                        CheckNulls(item, $"{name}[{i}]", errors);
                    }

                    i++;
                }
            }
            else if (IsOptionsRecord(p.PropertyType))
            {
                CheckNulls(v, name, errors);
            }
        }
    }

    private static IEnumerable<PropertyInfo> Settable(Type type)
        => type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is { IsPublic: true });

    private static bool IsOptionsRecord(Type type)
        => type.IsClass && type != typeof(string) && type.Namespace is { } ns && ns.StartsWith("ClusterSync", StringComparison.Ordinal);

    private static Type? ElementType(Type type)
        => type.IsGenericType && type.GetGenericTypeDefinition() is var d && (d == typeof(IReadOnlyList<>) || d == typeof(List<>) || d == typeof(IList<>))
            ? type.GetGenericArguments()[0]
            : null;

    private static string ConfigPath(string? jsonPath)
        => string.IsNullOrEmpty(jsonPath) || jsonPath == "$" ? "(top level)" : jsonPath.StartsWith("$.", StringComparison.Ordinal) ? jsonPath[2..] : jsonPath;

    /// <summary>The exception's own words without the "Path: ... | LineNumber: ..." tail (the caller states both).</summary>
    private static string Clean(JsonException ex)
    {
        var m = ex.Message;
        int cut = m.IndexOf(" Path:", StringComparison.Ordinal);
        if (cut < 0)
        {
            cut = m.IndexOf(" LineNumber:", StringComparison.Ordinal);
        }

        return (cut >= 0 ? m[..cut] : m).TrimEnd('.', ' ');
    }
}
