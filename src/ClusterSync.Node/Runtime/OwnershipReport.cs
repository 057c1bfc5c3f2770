using System.Buffers;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Membership;

namespace ClusterSync.Node.Runtime;

/// <summary>
/// <c>GET /ownership[?connections=true]</c>: load-sharing ownership over this member's replicated table. For each live
/// connection: its owner under the current owner set, the owner of its reply direction (the key built from the
/// table's reply tuple: must be the same member), the member that last originated it (the entry's owner field, as
/// replicated), and whether this member's data plane holds it from a takeover commit.
/// </summary>
internal sealed record OwnershipReport
{
    public int MemberId { get; init; }

    public string Mode { get; init; } = "";

    public string State { get; init; } = "";

    /// <summary>The members that own connections now, ascending.</summary>
    public IReadOnlyList<int> Owners { get; init; } = [];

    public long Connections { get; init; }

    /// <summary>Connections per owner (member id → count).</summary>
    public IReadOnlyDictionary<string, long> PerOwner { get; init; } = new Dictionary<string, long>();

    /// <summary>Connections per originating member (the replicated entry's owner field).</summary>
    public IReadOnlyDictionary<string, long> PerOrigin { get; init; } = new Dictionary<string, long>();

    /// <summary>Connections whose reply direction maps to another owner than the original direction (must be 0).</summary>
    public long Asymmetric { get; init; }

    /// <summary>Connections last originated by a member other than their owner now.</summary>
    public long OriginatedByOther { get; init; }

    /// <summary>XOR over connections of a hash of (key, owner), 16 hex digits: members that agree on every owner agree on this.</summary>
    public string OwnershipDigest { get; init; } = "";

    /// <summary>Connections in this member's replica sink (committed at the last takeover).</summary>
    public int Committed { get; init; }

    /// <summary>Connections this member gained at the last change of owners.</summary>
    public int LastGained { get; init; }

    public long OwnershipChanges { get; init; }

    public int? GeneratorLive { get; init; }

    /// <summary>Every connection, when asked for (<c>?connections=true</c>).</summary>
    public IReadOnlyList<OwnedConnection>? List { get; init; }

    public static OwnershipReport Build(NodeRuntime node, bool withList)
    {
        var membership = node.Membership;
        var owners = membership?.Owners ?? [];
        var committed = node.ReplicaSink.Committed;
        var walk = new Walk(owners, committed, withList ? [] : null);
        node.Engine.VisitLive(ref walk);
        return new OwnershipReport
        {
            MemberId = node.Engine.MemberId,
            Mode = node.Model.Config.Cluster.Mode,
            State = (membership?.State ?? Membership.MemberState.Init).ToString(),
            Owners = owners.Select(o => (int)o).ToList(),
            Connections = walk.Counts.Count,
            PerOwner = walk.Counts.PerOwner.ToDictionary(p => p.Key.ToString(CultureInfo.InvariantCulture), p => p.Value),
            PerOrigin = walk.Counts.PerOrigin.ToDictionary(p => p.Key.ToString(CultureInfo.InvariantCulture), p => p.Value),
            Asymmetric = walk.Counts.Asymmetric,
            OriginatedByOther = walk.Counts.OriginatedByOther,
            OwnershipDigest = walk.Counts.Digest.ToString("x16", CultureInfo.InvariantCulture),
            Committed = committed.Count,
            LastGained = membership?.LastGained ?? 0,
            OwnershipChanges = membership?.OwnershipChanges ?? 0,
            GeneratorLive = node.GeneratorLiveConnections,
            List = walk.List,
        };
    }

    private static readonly JsonSerializerOptions s_compact = new(JsonSerializerDefaults.Web);

    /// <summary>Slots walked per step of a streamed list (the table lock is held for one step; the output buffer holds one step's entries).</summary>
    public const int StreamStepSlots = 1024;

    /// <summary>Compact JSON and a newline (a report may list every connection).</summary>
    public static byte[] Serialize(OwnershipReport report)
        => [.. JsonSerializer.SerializeToUtf8Bytes(report, s_compact), (byte)'\n'];

    /// <summary>
    /// The report with every connection (<c>?connections=true</c>), streamed: the summary first (one walk without the
    /// list), then <c>list</c> written while the table is walked <see cref="StreamStepSlots"/> slots at a time, each
    /// step's JSON sent before the next step, the key texts formatted without allocating (IPv4). Memory is one step's
    /// output whatever the table size; the same document as <see cref="Build"/> with the list (not a point-in-time
    /// snapshot under churn, exactly like the in-memory walk).
    /// </summary>
    public static async Task WriteAsync(NodeRuntime node, Stream stream, CancellationToken cancellationToken)
    {
        var summary = JsonSerializer.SerializeToNode(Build(node, withList: false), s_compact)!.AsObject();
        summary.Remove("list");
        var buffer = new ArrayBufferWriter<byte>(256 * 1024);
        await using var writer = new Utf8JsonWriter(buffer);
        writer.WriteStartObject();
        foreach (var (name, value) in summary)
        {
            writer.WritePropertyName(name);
            if (value is null)
            {
                writer.WriteNullValue();
            }
            else
            {
                value.WriteTo(writer);
            }
        }

        writer.WritePropertyName("list");
        writer.WriteStartArray();
        var owners = node.Membership?.Owners ?? [];
        var committed = node.ReplicaSink.Committed;
        int cursor = 0;
        while (cursor >= 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var step = new StreamStep(owners, committed, writer);
            cursor = node.Engine.VisitLive(ref step, cursor, StreamStepSlots);
            if (cursor < 0)
            {
                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            writer.Flush();
            if (cursor < 0)
            {
                buffer.Write("\n"u8);
            }

            await stream.WriteAsync(buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
            buffer.ResetWrittenCount();
        }
    }

    private readonly struct StreamStep(byte[] owners, IReadOnlyDictionary<ConnectionKey, ConnectionEntry> committed, Utf8JsonWriter writer)
        : ILiveConnectionVisitor
    {
        public void Visit(in ConnectionKey key, in ConnectionEntry entry)
        {
            byte owner = Ownership.OwnerOf(key, owners);
            var reply = Ownership.ReplyKey(key, entry.Reply);
            Span<char> text = stackalloc char[KeyText.MaxLength];
            writer.WriteStartObject();
            writer.WriteString("key"u8, text[..KeyText.Format(key, text)]);
            writer.WriteString("reply"u8, text[..KeyText.Format(reply, text)]);
            writer.WriteNumber("owner"u8, owner);
            writer.WriteNumber("replyOwner"u8, Ownership.OwnerOf(reply, owners));
            writer.WriteNumber("origin"u8, entry.Owner);
            writer.WriteBoolean("committed"u8, committed.ContainsKey(key));
            writer.WriteEndObject();
        }
    }

    private sealed class Tally
    {
        public long Count;
        public long Asymmetric;
        public long OriginatedByOther;
        public ulong Digest;
        public SortedDictionary<int, long> PerOwner { get; } = [];
        public SortedDictionary<int, long> PerOrigin { get; } = [];
    }

    private readonly struct Walk(byte[] owners, IReadOnlyDictionary<ConnectionKey, ConnectionEntry> committed, List<OwnedConnection>? list)
        : ILiveConnectionVisitor
    {
        public Tally Counts { get; } = new();

        public List<OwnedConnection>? List => list;

        public void Visit(in ConnectionKey key, in ConnectionEntry entry)
        {
            byte owner = Ownership.OwnerOf(key, owners);
            var reply = Ownership.ReplyKey(key, entry.Reply);
            byte replyOwner = Ownership.OwnerOf(reply, owners);
            var t = Counts;
            t.Count++;
            t.Asymmetric += owner != replyOwner ? 1 : 0;
            t.OriginatedByOther += entry.Owner != owner ? 1 : 0;
            t.Digest ^= key.Hash64(0x0A11_0C47) * (0x9E37_79B9_7F4A_7C15UL + owner);
            t.PerOwner[owner] = t.PerOwner.GetValueOrDefault(owner) + 1;
            t.PerOrigin[entry.Owner] = t.PerOrigin.GetValueOrDefault(entry.Owner) + 1;
            list?.Add(new OwnedConnection(key.ToString(), reply.ToString(), owner, replyOwner, entry.Owner, committed.ContainsKey(key)));
        }
    }
}

/// <summary>One connection in <see cref="OwnershipReport.List"/>.</summary>
internal sealed record OwnedConnection(string Key, string Reply, int Owner, int ReplyOwner, int Origin, bool Committed);
