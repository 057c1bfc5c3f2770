namespace ClusterSync.Plugins.Conntrack.Tests;

/// <summary>Byte fixtures captured from the kernel (Fixtures/*.txt: "&lt;source&gt; &lt;hex&gt;" per line, # comments).</summary>
internal static class Fixtures
{
    public static IReadOnlyList<(string Source, byte[] Bytes)> Load(string name)
        => [.. File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", name))
            .Where(l => l.Length > 0 && l[0] != '#')
            .Select(l => l.Split(' ', 2))
            .Select(p => (p[0], Convert.FromHexString(p[1].Trim())))];

    public static IEnumerable<byte[]> Sources(string name, string source)
        => Load(name).Where(f => f.Source == source).Select(f => f.Bytes);
}
