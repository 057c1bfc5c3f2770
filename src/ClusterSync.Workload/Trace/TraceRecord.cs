namespace ClusterSync.Workload.Trace;

/// <summary>
/// One connection of a trace: when it started, how long it lived, its 5-tuple and its volume. The schema of the
/// trace CSV (docs/trace-format.md) and what every importer produces.
/// </summary>
/// <param name="StartUnixSeconds">Start, seconds since 1970-01-01 UTC (microsecond resolution).</param>
/// <param name="DurationSeconds">Lifetime in seconds (≥ 0).</param>
/// <param name="Protocol">IP protocol number (6 tcp, 17 udp, 1 icmp, ...).</param>
/// <param name="SourceAddress">An IPv4/IPv6 address, or <c>AS&lt;n&gt;</c> when only the autonomous system is known.</param>
/// <param name="SourcePort">0 for protocols without ports.</param>
/// <param name="DestinationAddress">As <paramref name="SourceAddress"/>.</param>
/// <param name="DestinationPort">0 for protocols without ports.</param>
/// <param name="Service">The generator's service name or an importer's label; may be empty.</param>
/// <param name="BytesOut">Bytes from the originator.</param>
/// <param name="BytesIn">Bytes from the responder.</param>
/// <param name="PacketsOut">Packets from the originator.</param>
/// <param name="PacketsIn">Packets from the responder.</param>
public readonly record struct TraceRecord(
    double StartUnixSeconds,
    double DurationSeconds,
    byte Protocol,
    string SourceAddress,
    ushort SourcePort,
    string DestinationAddress,
    ushort DestinationPort,
    string Service,
    long BytesOut,
    long BytesIn,
    long PacketsOut,
    long PacketsIn)
{
    public double EndUnixSeconds => StartUnixSeconds + DurationSeconds;
}
