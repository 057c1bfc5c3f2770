using System.Buffers.Binary;
using ClusterSync.Connections;
using ClusterSync.Protocol;

namespace ClusterSync.Node.DataPlanes;

/// <summary>
/// Connection records on a local stream, in the delta-sync record encoding (<see cref="RecordCodec"/>): the data-plane
/// feed (frames: a 4-byte big-endian length, then records) and the failover dumps of the control endpoint (a body of
/// back-to-back records). Loopback only, never on the sync wire: no encryption, no sequence numbers.
/// </summary>
public static class RecordStream
{
    /// <summary>Largest frame a feed reader accepts.</summary>
    public const int MaxFrameBytes = 1 << 20;

    /// <summary>
    /// Encodes <paramref name="events"/> as one frame into <paramref name="buffer"/>; returns its length. A data-plane
    /// change has no version, owner or update time yet (the engine assigns them on submit): the record carries
    /// wire-valid placeholders (version 1, owner 1, updated = created).
    /// </summary>
    public static int EncodeFrame(ReadOnlySpan<ConnectionEvent> events, byte[] buffer)
    {
        int at = 4;
        foreach (var change in events)
        {
            var e = change;
            e.Entry.Version = e.Entry.Version == 0 ? 1 : e.Entry.Version;
            e.Entry.Owner = e.Entry.Owner == 0 ? (byte)1 : e.Entry.Owner;
            e.Entry.UpdatedMs = Math.Max(e.Entry.UpdatedMs, e.Entry.CreatedMs);
            int n = RecordCodec.Write(buffer.AsSpan(at), e);
            if (n == 0)
            {
                throw new ArgumentException("the frame buffer is too small for the batch", nameof(buffer));
            }

            at += n;
        }

        BinaryPrimitives.WriteInt32BigEndian(buffer, at - 4);
        return at;
    }

    /// <summary>Back-to-back records of live entries (Kind Update, with version), as the failover dumps send them.</summary>
    public static byte[] EncodeEntries(IEnumerable<KeyValuePair<ConnectionKey, ConnectionEntry>> entries)
    {
        using var body = new MemoryStream();
        var buffer = new byte[RecordCodec.MaxRecordSize];
        foreach (var (k, e) in entries)
        {
            var r = new ConnectionEvent { Kind = ConnectionEventKind.Update, Key = k, Entry = e };
            body.Write(buffer, 0, RecordCodec.Write(buffer, r));
        }

        return body.ToArray();
    }

    /// <summary>Decodes a dump body; throws <see cref="InvalidDataException"/> at the first invalid record.</summary>
    public static Dictionary<ConnectionKey, ConnectionEntry> DecodeEntries(ReadOnlySpan<byte> body)
    {
        var result = new Dictionary<ConnectionKey, ConnectionEntry>();
        int at = 0;
        while (at < body.Length)
        {
            int n = RecordCodec.TryRead(body[at..], out var r);
            if (n == 0)
            {
                throw new InvalidDataException($"invalid connection record at byte {at} of {body.Length}");
            }

            result[r.Key] = r.Entry;
            at += n;
        }

        return result;
    }
}
