namespace ClusterSync.Plugins.Conntrack.Tests.Kernel;

internal static class KernelTestData
{
    public static DataPlaneContext Context(string? settings = null)
        => new(1, settings is null ? null : JsonDocument.Parse(settings).RootElement.Clone());

    /// <summary>An established TCP connection 10.&lt;net&gt;.x.y:port → 192.168.1.1:443 (distinct per <paramref name="i"/>).</summary>
    public static KeyValuePair<ConnectionKey, ConnectionEntry> Tcp(int i, byte net = 1, ProtocolState state = ProtocolState.TcpEstablished, uint timeout = 3600)
    {
        var key = ConnectionKey.IPv4((uint)(0x0A000000 | (net << 16) | (i >> 14)), 0xC0A80101, (ushort)(1024 + (i & 0x3FFF)), 443, 6);
        return new(key, new ConnectionEntry
        {
            Reply = key.InverseTuple,
            State = state,
            Status = ConnectionStatus.SeenReply | ConnectionStatus.Assured | ConnectionStatus.Confirmed,
            TimeoutSeconds = timeout,
        });
    }

    public static long Counter(IConnectionSource source, string name) => ((IDataPlaneStatus)source).GetCounters()[name];

    public static long Counter(IReplicaSink sink, string name) => ((IDataPlaneStatus)sink).GetCounters().GetValueOrDefault(name);

    public static string Ip(ulong low) => $"{(byte)(low >> 24)}.{(byte)(low >> 16)}.{(byte)(low >> 8)}.{(byte)low}";
}
