using System.Globalization;
using System.Text;

namespace ClusterSync.Workload.Trace;

/// <summary>
/// Reads and writes the trace CSV (docs/trace-format.md): a header line with the column names below, then one
/// connection per line; lines starting with <c>#</c> are comments. Bad input throws
/// <see cref="ConfigurationException"/> naming the file, the line, the field and what was expected.
/// </summary>
public static class TraceCsv
{
    public static readonly string[] Columns =
    [
        "start", "duration", "proto", "src", "sport", "dst", "dport", "service", "bytes_out", "bytes_in", "pkts_out", "pkts_in",
    ];

    public static string Header => string.Join(',', Columns);

    public static void Write(TextWriter writer, IEnumerable<TraceRecord> records)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(records);
        writer.WriteLine(Header);
        var sb = new StringBuilder(128);
        foreach (var r in records)
        {
            sb.Clear();
            var inv = CultureInfo.InvariantCulture;
            sb.Append(r.StartUnixSeconds.ToString("R", inv)).Append(',')
              .Append(r.DurationSeconds.ToString("R", inv)).Append(',')
              .Append(r.Protocol.ToString(inv)).Append(',')
              .Append(r.SourceAddress).Append(',')
              .Append(r.SourcePort.ToString(inv)).Append(',')
              .Append(r.DestinationAddress).Append(',')
              .Append(r.DestinationPort.ToString(inv)).Append(',')
              .Append(r.Service).Append(',')
              .Append(r.BytesOut.ToString(inv)).Append(',')
              .Append(r.BytesIn.ToString(inv)).Append(',')
              .Append(r.PacketsOut.ToString(inv)).Append(',')
              .Append(r.PacketsIn.ToString(inv));
            writer.WriteLine(sb);
        }
    }

    public static void Write(string path, IEnumerable<TraceRecord> records)
    {
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(false), 1 << 16);
        Write(writer, records);
    }

    public static List<TraceRecord> Read(string path)
    {
        if (!File.Exists(path))
        {
            throw ConfigurationErrors.InFile(path, "no such trace file");
        }

        using var reader = new StreamReader(path, Encoding.UTF8, true, 1 << 16);
        return Read(reader, path);
    }

    public static List<TraceRecord> Read(TextReader reader, string name)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var list = new List<TraceRecord>();
        bool header = false;
        foreach (var (lineNo, line) in TraceLines.NonEmpty(reader))
        {
            if (line[0] == '#')
            {
                continue;
            }

            if (!header)
            {
                if (!string.Equals(line.Trim(), Header, StringComparison.Ordinal))
                {
                    throw ConfigurationErrors.AtLine(name, lineNo, $"header: expected '{Header}', found '{Truncate(line)}'");
                }

                header = true;
                continue;
            }

            list.Add(ParseLine(line, name, lineNo));
        }

        if (!header)
        {
            throw ConfigurationErrors.InFile(name, $"header: expected '{Header}', found an empty file");
        }

        return list;
    }

    private static TraceRecord ParseLine(string line, string name, int lineNo)
    {
        var f = line.Split(',');
        if (f.Length != Columns.Length)
        {
            throw ConfigurationErrors.AtLine(name, lineNo, $"expected {Columns.Length} comma-separated fields ({Header}), found {f.Length}");
        }

        double start = Double(f, 0, name, lineNo);
        double duration = Double(f, 1, name, lineNo);
        if (duration < 0)
        {
            throw ConfigurationErrors.AtLine(name, lineNo, $"duration: expected seconds ≥ 0, found '{f[1]}'");
        }

        return new TraceRecord(
            start,
            duration,
            (byte)Integer(f, 2, name, lineNo, 255),
            Address(f, 3, name, lineNo),
            (ushort)Integer(f, 4, name, lineNo, 65535),
            Address(f, 5, name, lineNo),
            (ushort)Integer(f, 6, name, lineNo, 65535),
            f[7].Trim(),
            Integer(f, 8, name, lineNo, long.MaxValue),
            Integer(f, 9, name, lineNo, long.MaxValue),
            Integer(f, 10, name, lineNo, long.MaxValue),
            Integer(f, 11, name, lineNo, long.MaxValue));
    }

    private static string Address(string[] f, int i, string name, int lineNo)
    {
        var s = f[i].Trim();
        if (s.Length == 0)
        {
            throw ConfigurationErrors.AtLine(name, lineNo, $"{Columns[i]}: expected an IP address or AS<n>, found an empty field");
        }

        return s;
    }

    private static double Double(string[] f, int i, string name, int lineNo)
    {
        if (!double.TryParse(f[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
        {
            throw ConfigurationErrors.AtLine(name, lineNo, $"{Columns[i]}: expected a number of seconds, found '{Truncate(f[i])}'");
        }

        return v;
    }

    private static long Integer(string[] f, int i, string name, int lineNo, long max)
    {
        if (!long.TryParse(f[i], NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v > max)
        {
            throw ConfigurationErrors.AtLine(name, lineNo, $"{Columns[i]}: expected an integer 0-{max}, found '{Truncate(f[i])}'");
        }

        return v;
    }

    private static string Truncate(string s) => s.Length <= 60 ? s : s[..60] + "...";
}
