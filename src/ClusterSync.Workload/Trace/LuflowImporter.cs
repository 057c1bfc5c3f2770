using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace ClusterSync.Workload.Trace;

/// <summary>
/// Imports LUFlow flow records (github.com/ruzzzzz/LUFlow; a CSV, a zip holding CSVs, or a directory of either)
/// into trace records. Traps handled (see /work/shared/data/README.md): addresses are autonomous-system numbers
/// (written <c>AS&lt;n&gt;</c>); <c>time_start</c>/<c>time_end</c> are epoch microseconds written without
/// trailing zeros (right-padded to 16 digits); <c>duration</c> may be in E-notation; rows are not sorted; ICMP
/// rows have empty ports (written <c>""</c>). The capture splits long flows into records of about 30 s: with stitching on,
/// a record that starts within <see cref="StitchGapSeconds"/> of the end of the previous record of the same
/// 5-tuple continues that connection instead of starting a new one.
/// </summary>
internal static class LuflowImporter
{
    public const double StitchGapSeconds = 2.0;

    /// <summary>The university's own autonomous system in LUFlow.</summary>
    public const string UniversityAs = "AS786";

    private static readonly string[] s_required =
        ["bytes_in", "bytes_out", "dest_ip", "dest_port", "num_pkts_out", "num_pkts_in", "proto", "src_ip", "src_port", "time_start", "duration"];

    public static List<TraceRecord> Read(string path, bool stitch = true) => Read(path, stitch, out _);

    public static List<TraceRecord> Read(string path, bool stitch, out int stitched)
    {
        var list = new List<TraceRecord>();
        if (Directory.Exists(path))
        {
            foreach (var f in Directory.EnumerateFiles(path).Where(f => f.EndsWith(".zip", StringComparison.OrdinalIgnoreCase)
                || f.EndsWith(".csv", StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal))
            {
                ReadFile(f, list);
            }
        }
        else if (File.Exists(path))
        {
            ReadFile(path, list);
        }
        else
        {
            throw ConfigurationErrors.InFile(path, "no such LUFlow file or directory");
        }

        list.Sort(static (x, y) => x.StartUnixSeconds.CompareTo(y.StartUnixSeconds));
        stitched = 0;
        if (stitch)
        {
            list = Stitch(list, out stitched);
        }

        return list;
    }

    private static void ReadFile(string path, List<TraceRecord> into)
    {
        if (path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase))
        {
            ZipArchive zip;
            try
            {
                zip = ZipFile.OpenRead(path);
            }
            catch (InvalidDataException ex)
            {
                throw ConfigurationErrors.InFile(path, $"expected a zip archive of LUFlow CSV files ({ex.Message})");
            }

            using (zip)
            {
                foreach (var entry in zip.Entries.Where(e => e.FullName.EndsWith(".csv", StringComparison.OrdinalIgnoreCase)))
                {
                    using var reader = new StreamReader(entry.Open(), Encoding.UTF8);
                    ReadCsv(reader, $"{path}!{entry.FullName}", into);
                }
            }

            return;
        }

        using var r = new StreamReader(path, Encoding.UTF8, true, 1 << 16);
        ReadCsv(r, path, into);
    }

    public static void ReadCsv(TextReader reader, string name, List<TraceRecord> into)
    {
        var header = reader.ReadLine() ?? throw ConfigurationErrors.InFile(name, "expected a LUFlow CSV header, found an empty file");
        var cols = header.Split(',').Select(c => c.Trim()).ToArray();
        int Col(string c)
        {
            int i = Array.IndexOf(cols, c);
            return i >= 0 ? i : throw ConfigurationErrors.AtLine(name, 1, $"header: expected a LUFlow column '{c}' (needs {string.Join(", ", s_required)})");
        }

        int bytesIn = Col("bytes_in"), bytesOut = Col("bytes_out"), dst = Col("dest_ip"), dport = Col("dest_port"),
            pktsOut = Col("num_pkts_out"), pktsIn = Col("num_pkts_in"), proto = Col("proto"), src = Col("src_ip"),
            sport = Col("src_port"), start = Col("time_start"), duration = Col("duration");
        int label = Array.IndexOf(cols, "label");
        int width = cols.Length;
        foreach (var (lineNo, line) in TraceLines.NonEmpty(reader, linesRead: 1))
        {
            var f = line.Split(',');
            if (f.Length != width)
            {
                throw ConfigurationErrors.AtLine(name, lineNo, $"expected {width} comma-separated fields, found {f.Length}");
            }

            into.Add(new TraceRecord(
                Microseconds(f[start], name, lineNo, "time_start"),
                Seconds(f[duration], name, lineNo),
                (byte)Integer(f[proto], name, lineNo, "proto", 255, allowEmpty: false),
                "AS" + Integer(f[src], name, lineNo, "src_ip", uint.MaxValue, allowEmpty: false).ToString(CultureInfo.InvariantCulture),
                (ushort)Integer(f[sport], name, lineNo, "src_port", 65535, allowEmpty: true),
                "AS" + Integer(f[dst], name, lineNo, "dest_ip", uint.MaxValue, allowEmpty: false).ToString(CultureInfo.InvariantCulture),
                (ushort)Integer(f[dport], name, lineNo, "dest_port", 65535, allowEmpty: true),
                label >= 0 ? f[label].Trim() : "",
                Integer(f[bytesOut], name, lineNo, "bytes_out", long.MaxValue, allowEmpty: true),
                Integer(f[bytesIn], name, lineNo, "bytes_in", long.MaxValue, allowEmpty: true),
                Integer(f[pktsOut], name, lineNo, "num_pkts_out", long.MaxValue, allowEmpty: true),
                Integer(f[pktsIn], name, lineNo, "num_pkts_in", long.MaxValue, allowEmpty: true)));
        }
    }

    /// <summary>Epoch microseconds written without trailing zeros: right-pad the digits to 16 before dividing.</summary>
    public static double Microseconds(string text, string name, int lineNo, string field)
    {
        var s = text.Trim();
        if (s.Length is 0 or > 16 || !s.All(char.IsAsciiDigit))
        {
            throw ConfigurationErrors.AtLine(name, lineNo, $"{field}: expected epoch microseconds (up to 16 digits), found '{s}'");
        }

        long us = long.Parse(s.PadRight(16, '0'), NumberStyles.None, CultureInfo.InvariantCulture);
        return us / 1e6;
    }

    private static double Seconds(string text, string name, int lineNo)
    {
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v) || v < 0)
        {
            throw ConfigurationErrors.AtLine(name, lineNo, $"duration: expected seconds ≥ 0 (E-notation allowed), found '{text}'");
        }

        return v;
    }

    private static long Integer(string text, string name, int lineNo, string field, long max, bool allowEmpty)
    {
        // ICMP rows write their empty ports as "" (a quoted empty string).
        var s = text.Trim().Trim('"');
        if (s.Length == 0 && allowEmpty)
        {
            return 0;
        }

        // Some exports write integral columns as floats ("443.0").
        if (long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v <= max)
        {
            return v;
        }

        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d >= 0 && d <= max && d == Math.Floor(d))
        {
            return (long)d;
        }

        throw ConfigurationErrors.AtLine(name, lineNo, $"{field}: expected an integer 0-{max}{(allowEmpty ? " or empty" : "")}, found '{s}'");
    }

    /// <summary>Joins records of one 5-tuple that continue each other (input sorted by start).</summary>
    private static List<TraceRecord> Stitch(List<TraceRecord> sorted, out int stitched)
    {
        var open = new Dictionary<(byte, string, ushort, string, ushort), int>();
        var result = new List<TraceRecord>(sorted.Count);
        stitched = 0;
        foreach (var r in sorted)
        {
            var key = (r.Protocol, r.SourceAddress, r.SourcePort, r.DestinationAddress, r.DestinationPort);
            if (r.Protocol != 1 && open.TryGetValue(key, out var at))
            {
                var prev = result[at];
                if (r.StartUnixSeconds <= prev.EndUnixSeconds + StitchGapSeconds)
                {
                    double end = Math.Max(prev.EndUnixSeconds, r.EndUnixSeconds);
                    result[at] = prev with
                    {
                        DurationSeconds = end - prev.StartUnixSeconds,
                        BytesOut = prev.BytesOut + r.BytesOut,
                        BytesIn = prev.BytesIn + r.BytesIn,
                        PacketsOut = prev.PacketsOut + r.PacketsOut,
                        PacketsIn = prev.PacketsIn + r.PacketsIn,
                    };
                    stitched++;
                    continue;
                }
            }

            open[key] = result.Count;
            result.Add(r);
        }

        return result;
    }
}
