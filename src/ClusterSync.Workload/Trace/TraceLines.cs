namespace ClusterSync.Workload.Trace;

/// <summary>The lines of a trace file that hold something, numbered as in the file (for errors that name the line).</summary>
internal static class TraceLines
{
    /// <summary>The non-empty lines still to read; <paramref name="linesRead"/> lines (a header) were read before.</summary>
    public static IEnumerable<(int Number, string Text)> NonEmpty(TextReader reader, int linesRead = 0)
    {
        int number = linesRead;
        while (reader.ReadLine() is { } line)
        {
            number++;
            if (line.Length > 0)
            {
                yield return (number, line);
            }
        }
    }
}
