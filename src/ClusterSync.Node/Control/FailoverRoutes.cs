using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using ClusterSync.Connections;
using ClusterSync.Node.Control.Http;
using ClusterSync.Node.DataPlanes;
using ClusterSync.Node.Runtime;

namespace ClusterSync.Node.Control;

/// <summary>
/// Control endpoint routes for failover accounting (<c>clustersync demo</c>, <c>bench failover</c>, tests), kept
/// apart from the endpoint's HTTP server so they can be attached to any server:
/// <list type="bullet">
/// <item><c>/failover</c>: JSON <see cref="FailoverDocument"/> (when this member saw the Active die, what it held then,
/// when it started serving, what it committed);</item>
/// <item><c>/failover/capture</c>: the keys of the connections held when the Active was seen dead (back-to-back
/// <see cref="ConnectionKey"/>s in this machine's memory layout, <see cref="EncodeKeys"/>; loopback only; 404 before any capture);</item>
/// <item><c>/failover/committed</c>: what the last promotion committed into the data plane (same encoding).</item>
/// <item><c>/failover/templates</c>: the connection templates the last promotion committed (back-to-back template
/// records, <c>TemplateCodec</c>; docs/templates.md).</item>
/// <item><c>/failover/heard</c>: JSON <see cref="HeartbeatLogSnapshot"/> (when this member heard each peer, tick by
/// tick, and saw one dead; docs/conntrack.md, "Commit at 1M").</item>
/// </list>
/// </summary>
public static class FailoverRoutes
{
    public const string StatusPath = "/failover";
    public const string CapturePath = "/failover/capture";
    public const string CommittedPath = "/failover/committed";
    public const string TemplatesPath = "/failover/templates";
    public const string HeardPath = "/failover/heard";

    /// <summary>The routes, for the control endpoint's route table (GET and HEAD).</summary>
    public static IEnumerable<KeyValuePair<string, ControlHandler>> Routes(NodeRuntime node) =>
    [
        new(StatusPath, _ => ValueTask.FromResult(new ControlResponse(200, ControlResponse.JsonContent,
            Encoding.UTF8.GetBytes(JsonSerializer.Serialize(Describe(node), FailoverJson.Options) + "\n")))),
        new(CapturePath, _ => ValueTask.FromResult(node.Witness.Capture is { } capture
            ? new ControlResponse(200, "application/octet-stream", EncodeKeys(capture.Connections))
            : ControlResponse.Text(404, "no Active member seen dead yet\n"))),
        new(CommittedPath, _ => ValueTask.FromResult(new ControlResponse(200, "application/octet-stream", RecordStream.EncodeEntries(node.ReplicaSink.Committed)))),
        new(TemplatesPath, _ => ValueTask.FromResult(new ControlResponse(200, "application/octet-stream", EncodeTemplates(node.ReplicaSink.CommittedTemplates)))),
        new(HeardPath, _ => ValueTask.FromResult(new ControlResponse(200, ControlResponse.JsonContent,
            Encoding.UTF8.GetBytes(JsonSerializer.Serialize(node.Witness.Heard.Snapshot(), FailoverJson.Options) + "\n")))),
    ];

    /// <summary>Keys back to back, as <see cref="ConnectionKey"/> lies in memory (a local dump: same machine, same layout).</summary>
    public static byte[] EncodeKeys(IReadOnlyCollection<ConnectionKey> keys)
    {
        if (keys is ArraySegment<ConnectionKey> segment)
        {
            return System.Runtime.InteropServices.MemoryMarshal.AsBytes(segment.AsSpan()).ToArray();
        }

        var buffer = new byte[keys.Count * System.Runtime.CompilerServices.Unsafe.SizeOf<ConnectionKey>()];
        var span = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ConnectionKey>(buffer.AsSpan());
        int at = 0;
        foreach (var k in keys)
        {
            if (at == span.Length)
            {
                break;
            }

            span[at++] = k;
        }

        return buffer[..(at * System.Runtime.CompilerServices.Unsafe.SizeOf<ConnectionKey>())];
    }

    /// <summary>Reads what <see cref="EncodeKeys"/> wrote.</summary>
    public static ConnectionKey[] DecodeKeys(ReadOnlySpan<byte> body)
        => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ConnectionKey>(body[..(body.Length - (body.Length % System.Runtime.CompilerServices.Unsafe.SizeOf<ConnectionKey>()))]).ToArray();

    /// <summary>Templates as back-to-back template records.</summary>
    public static byte[] EncodeTemplates(IReadOnlyCollection<Templates.ConnectionTemplate> templates)
    {
        var buffer = new byte[templates.Count * Protocol.TemplateCodec.SizeIPv6];
        int at = 0;
        foreach (var t in templates)
        {
            at += Protocol.TemplateCodec.Write(buffer.AsSpan(at), t);
        }

        return buffer[..at];
    }

    /// <summary>Reads what <see cref="EncodeTemplates"/> wrote; stops at the first record that does not parse.</summary>
    public static List<Templates.ConnectionTemplate> DecodeTemplates(ReadOnlySpan<byte> body)
    {
        var list = new List<Templates.ConnectionTemplate>();
        while (body.Length > 0 && Protocol.TemplateCodec.TryRead(body, out var t) is var used and > 0)
        {
            list.Add(t);
            body = body[used..];
        }

        return list;
    }

    public static FailoverDocument Describe(NodeRuntime node)
    {
        var capture = node.Witness.Capture;
        return new FailoverDocument
        {
            MemberId = node.Engine.MemberId,
            State = (node.Membership?.State ?? Membership.MemberState.Init).ToString(),
            Failovers = node.Membership?.Failovers ?? 0,
            ServingUnixMs = node.Witness.ServingUnixMs,
            PromotingUnixMs = node.Membership?.LastPromotion?.PromotingUnixMs ?? 0,
            CommitStartedUnixMs = node.Membership?.LastPromotion?.CommitStartedUnixMs ?? 0,
            CommitFinishedUnixMs = node.Membership?.LastPromotion?.CommitFinishedUnixMs ?? 0,
            Committed = node.ReplicaSink.CommittedCount,
            Capture = capture is null ? null : new CaptureDocument
            {
                Peer = capture.Peer,
                DetectedUnixMs = capture.DetectedUnixMs,
                BeforePromotion = capture.BeforePromotion,
                Connections = capture.Connections.Count,
            },
            FeedSubmitted = node.Feed?.Submitted,
            FeedDropped = node.Feed?.Dropped,
            Gc = node.GetGcStatus(),
        };
    }
}

public sealed record FailoverDocument
{
    public int MemberId { get; init; }

    public string State { get; init; } = "";

    public long Failovers { get; init; }

    /// <summary>When this member last became Active (Unix ms with fraction, this machine's clock, after its commit); 0 if never.</summary>
    public double ServingUnixMs { get; init; }

    /// <summary>When the last promotion began (this member announced Promoting), Unix ms; 0 if never.</summary>
    public double PromotingUnixMs { get; init; }

    /// <summary>When its commit handed the first connection to the data plane, Unix ms; 0 if never.</summary>
    public double CommitStartedUnixMs { get; init; }

    /// <summary>When its commit ended (the last connection committed), Unix ms; 0 if never.</summary>
    public double CommitFinishedUnixMs { get; init; }

    /// <summary>Connections the last promotion committed into the data plane.</summary>
    public int Committed { get; init; }

    public CaptureDocument? Capture { get; init; }

    public long? FeedSubmitted { get; init; }

    public long? FeedDropped { get; init; }

    /// <summary>This process's garbage-collector pauses (as <c>/status</c> <c>gc</c>): <c>bench failover</c> reads the longest after the kill.</summary>
    public Runtime.GcStatus? Gc { get; init; }
}

public sealed record CaptureDocument
{
    public int Peer { get; init; }

    public double DetectedUnixMs { get; init; }

    public bool BeforePromotion { get; init; }

    public int Connections { get; init; }
}

internal static class FailoverJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}
