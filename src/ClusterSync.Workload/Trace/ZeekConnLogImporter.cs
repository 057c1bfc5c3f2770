using System.Globalization;
using System.Text;

namespace ClusterSync.Workload.Trace;

/// <summary>
/// Imports a Zeek <c>conn.log</c> (TSV with a <c>#fields</c> header; <c>-</c> for unset, <c>(empty)</c> for empty)
/// into trace records. Needs ts, id.orig_h, id.orig_p, id.resp_h, id.resp_p, proto; duration, orig_bytes,
/// resp_bytes, orig_pkts, resp_pkts and service are used when present (an unset duration is 0). A <c>proto</c> of
/// <c>unknown_transport</c> (neither TCP, UDP nor ICMP) takes its number from <c>ip_proto</c> (Zeek 5 and later), ports 0.
/// </summary>
internal static class ZeekConnLogImporter
{
    public static List<TraceRecord> Read(string path)
    {
        if (!File.Exists(path))
        {
            throw ConfigurationErrors.InFile(path, "no such Zeek conn.log");
        }

        using var reader = new StreamReader(path, Encoding.UTF8, true, 1 << 16);
        var list = Read(reader, path);
        list.Sort(static (x, y) => x.StartUnixSeconds.CompareTo(y.StartUnixSeconds));
        return list;
    }

    public static List<TraceRecord> Read(TextReader reader, string name)
    {
        var list = new List<TraceRecord>();
        string[]? fields = null;
        char separator = '\t';
        int ts = -1, oh = -1, op = -1, rh = -1, rp = -1, proto = -1, dur = -1, ob = -1, rb = -1, opk = -1, rpk = -1, svc = -1, ipProto = -1;
        foreach (var (lineNo, line) in TraceLines.NonEmpty(reader))
        {
            if (line[0] == '#')
            {
                if (line.StartsWith("#separator ", StringComparison.Ordinal))
                {
                    var sep = line["#separator ".Length..].Trim();
                    separator = sep.StartsWith("\\x", StringComparison.Ordinal)
                        ? (char)int.Parse(sep.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture)
                        : sep.Length > 0 ? sep[0] : '\t';
                }
                else if (line.StartsWith("#fields", StringComparison.Ordinal))
                {
                    fields = line.Split(separator)[1..];
                    int F(string n) => Array.IndexOf(fields, n);
                    (ts, oh, op, rh, rp, proto) = (F("ts"), F("id.orig_h"), F("id.orig_p"), F("id.resp_h"), F("id.resp_p"), F("proto"));
                    (dur, ob, rb, opk, rpk, svc) = (F("duration"), F("orig_bytes"), F("resp_bytes"), F("orig_pkts"), F("resp_pkts"), F("service"));
                    ipProto = F("ip_proto");
                    foreach (var (i, n) in new[] { (ts, "ts"), (oh, "id.orig_h"), (op, "id.orig_p"), (rh, "id.resp_h"), (rp, "id.resp_p"), (proto, "proto") })
                    {
                        if (i < 0)
                        {
                            throw ConfigurationErrors.AtLine(name, lineNo, $"#fields: expected a field '{n}' (a Zeek conn.log)");
                        }
                    }
                }

                continue;
            }

            if (fields is null)
            {
                throw ConfigurationErrors.AtLine(name, lineNo, "expected a '#fields' header line before the first record (a Zeek conn.log)");
            }

            var f = line.Split(separator);
            if (f.Length != fields.Length)
            {
                throw ConfigurationErrors.AtLine(name, lineNo, $"expected {fields.Length} fields separated by the '#separator', found {f.Length}");
            }

            byte p = f[proto] switch
            {
                "tcp" => 6,
                "udp" => 17,
                "icmp" => 1,
                "icmp6" or "icmpv6" => 58,
                "unknown_transport" when ipProto >= 0 => (byte)Integer(f, ipProto, name, lineNo, "ip_proto", 255),
                var other => byte.TryParse(other, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
                    : throw ConfigurationErrors.AtLine(name, lineNo, $"proto: expected tcp, udp, icmp or a protocol number, found '{other}'"
                        + (other == "unknown_transport" ? " (a log without 'ip_proto' does not say which)" : "")),
            };
            bool ports = p is 6 or 17 or 132;
            list.Add(new TraceRecord(
                Number(f, ts, name, lineNo, "ts", required: true),
                Number(f, dur, name, lineNo, "duration", required: false),
                p,
                f[oh],
                !ports ? (ushort)0 : (ushort)Integer(f, op, name, lineNo, "id.orig_p", 65535),
                f[rh],
                !ports ? (ushort)0 : (ushort)Integer(f, rp, name, lineNo, "id.resp_p", 65535),
                svc >= 0 && f[svc] is not "-" and not "(empty)" ? f[svc] : "",
                Integer(f, ob, name, lineNo, "orig_bytes", long.MaxValue),
                Integer(f, rb, name, lineNo, "resp_bytes", long.MaxValue),
                Integer(f, opk, name, lineNo, "orig_pkts", long.MaxValue),
                Integer(f, rpk, name, lineNo, "resp_pkts", long.MaxValue)));
        }

        if (fields is null)
        {
            throw ConfigurationErrors.InFile(name, "expected a Zeek conn.log with a '#fields' header, found none");
        }

        return list;
    }

    private static double Number(string[] f, int i, string name, int lineNo, string field, bool required)
    {
        if (i < 0 || f[i] == "-")
        {
            return required ? throw ConfigurationErrors.AtLine(name, lineNo, $"{field}: expected a number, found '-'") : 0;
        }

        if (!double.TryParse(f[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v) || v < 0)
        {
            throw ConfigurationErrors.AtLine(name, lineNo, $"{field}: expected a number ≥ 0, found '{f[i]}'");
        }

        return v;
    }

    private static long Integer(string[] f, int i, string name, int lineNo, string field, long max)
    {
        if (i < 0 || f[i] == "-")
        {
            return 0;
        }

        if (!long.TryParse(f[i], NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v > max)
        {
            throw ConfigurationErrors.AtLine(name, lineNo, $"{field}: expected an integer 0-{max} or '-', found '{f[i]}'");
        }

        return v;
    }
}
