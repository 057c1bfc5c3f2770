using System.Text.Json;
using ClusterSync.Classification;
using ClusterSync.Connections;
using ClusterSync.Plugins;

[assembly: ClusterSyncPlugin(ClusterSync.Plugins.FtpProtocolFactory.PluginName, "1.0.0", PluginKind.Protocol)]

namespace ClusterSync.Plugins;

/// <summary>
/// FTP awareness (a sample vendor protocol plugin): recognises FTP control connections (TCP to port 21, or the ports in
/// the <c>controlPorts</c> setting) and ties each data connection to its control connection, so that the engine
/// classifies and synchronizes them as a unit. Every other connection is classified by the node's port/protocol rules.
/// </summary>
/// <remarks>
/// Settings (<c>plugins.settings.ftp</c>): <c>class</c> (the control connection's service class; default
/// <c>mission-critical</c>), <c>controlPorts</c> (default <c>[21]</c>). A data connection is a TCP connection between the
/// two addresses of a live control connection: passive mode (client to a server port of 1024 and above) or active
/// mode (server port 20 to the client). A real FTP helper reads the PORT/PASV replies; this sample infers the pairing
/// from addresses, which is what the engine needs to show the unit.
/// </remarks>
public sealed class FtpProtocolFactory : IConnectionClassifierFactory
{
    /// <summary>The plugin's name.</summary>
    public const string PluginName = "ftp";

    /// <inheritdoc/>
    public string Name => PluginName;

    /// <inheritdoc/>
    public IConnectionClassifier Create(ClassifierContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        string controlClass = ServiceClassNames.MissionCritical;
        var ports = new HashSet<ushort> { 21 };
        if (context.Settings is { ValueKind: JsonValueKind.Object } s)
        {
            if (s.TryGetProperty("class", out var c))
            {
                controlClass = c.GetString() ?? controlClass;
            }

            if (s.TryGetProperty("controlPorts", out var p))
            {
                ports = [.. p.EnumerateArray().Select(e => e.GetUInt16())];
            }
        }

        if (!context.ServiceClasses.Contains(controlClass))
        {
            throw new ArgumentException($"class: '{controlClass}' is not a configured service class");
        }

        return new FtpClassifier(controlClass, ports, context.Rules);
    }
}

internal sealed class FtpClassifier : IConnectionClassifier, IRelatedConnectionResolver
{
    private const int MaxControls = 65536;
    private readonly string _controlClass;
    private readonly HashSet<ushort> _controlPorts;
    private readonly PortProtocolRules _rules;
    private readonly Dictionary<(ulong, ulong, ulong, ulong), ConnectionKey> _controls = [];   // (client, server) → control
    private readonly object _sync = new();

    public FtpClassifier(string controlClass, HashSet<ushort> controlPorts, IReadOnlyList<ClassRule> rules)
    {
        _controlClass = controlClass;
        _controlPorts = controlPorts;
        _rules = new PortProtocolRules(FtpProtocolFactory.PluginName, rules);
    }

    public string Name => FtpProtocolFactory.PluginName;

    public string? Classify(in ConnectionKey connection)
    {
        if (connection.Protocol == 6 && _controlPorts.Contains(connection.DestinationPort))
        {
            lock (_sync)
            {
                if (_controls.Count >= MaxControls)
                {
                    _controls.Clear(); // bounded: a forgotten control connection only loses the tie of later data connections
                }

                _controls[(connection.SourceHigh, connection.SourceLow, connection.DestinationHigh, connection.DestinationLow)] = connection;
            }

            return _controlClass;
        }

        return _rules.Classify(connection);
    }

    public bool TryGetControlConnection(in ConnectionKey connection, out ConnectionKey control)
    {
        control = default;
        if (connection.Protocol != 6 || _controlPorts.Contains(connection.DestinationPort))
        {
            return false;
        }

        lock (_sync)
        {
            // Passive: client → server, server port ≥ 1024, on the address pair of a control connection.
            if (connection.DestinationPort >= 1024
                && _controls.TryGetValue((connection.SourceHigh, connection.SourceLow, connection.DestinationHigh, connection.DestinationLow), out control))
            {
                return true;
            }

            // Active: server port 20 → client.
            return connection.SourcePort == 20
                && _controls.TryGetValue((connection.DestinationHigh, connection.DestinationLow, connection.SourceHigh, connection.SourceLow), out control);
        }
    }
}
