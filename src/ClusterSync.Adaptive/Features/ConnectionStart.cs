namespace ClusterSync.Adaptive.Features;

/// <summary>
/// What is known about a connection when it starts — everything a lifetime prediction may use. Built from a
/// <see cref="Connections.ConnectionKey"/> at runtime and from a <see cref="Workload.Trace.TraceRecord"/> in
/// training, by <see cref="FeatureExtractor"/>.
/// </summary>
/// <param name="Protocol">IP protocol number.</param>
/// <param name="SourcePort">Originator port (0 without ports).</param>
/// <param name="DestinationPort">Responder port (0 without ports).</param>
/// <param name="SourceInternal">The originator is inside the protected network.</param>
/// <param name="DestinationInternal">The responder is inside the protected network.</param>
/// <param name="StartUnixSeconds">Start time, seconds since the Unix epoch (UTC).</param>
public readonly record struct ConnectionStart(
    byte Protocol,
    ushort SourcePort,
    ushort DestinationPort,
    bool SourceInternal,
    bool DestinationInternal,
    double StartUnixSeconds);
