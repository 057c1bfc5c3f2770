using System.Diagnostics;
using System.Text.Json;
using ClusterSync.Connections;
using ClusterSync.Engine;

namespace ClusterSync.Cli.Bench;

/// <summary>What the macro benchmarks share: the connection population (index ↔ key), the fill, and condition waits.</summary>
internal static class BenchWorkload
{
    /// <summary>Connection number <paramref name="index"/>: tcp 10.x.y.z:port → 192.168.0.1:443, one per index.</summary>
    public static ConnectionKey KeyOf(int index) => ConnectionKey.IPv4(0x0A00_0000u + (uint)(index >> 16), 0xC0A8_0001, (ushort)index, 443, 6);

    /// <summary>The inverse of <see cref="KeyOf"/>.</summary>
    public static int IndexOf(in ConnectionKey key) => (int)(((key.SourceV4 - 0x0A00_0000u) << 16) | key.SourcePort);

    /// <summary>Creates connections 0 … <paramref name="entries"/>−1 on <paramref name="member"/>, in batches of 256.</summary>
    public static void Fill(SyncEngine member, int entries, ProtocolState state, uint timeoutSeconds)
    {
        var batch = new ConnectionEvent[256];
        long nowMs = member.NowMs();
        for (int i = 0; i < entries;)
        {
            int n = Math.Min(batch.Length, entries - i);
            for (int j = 0; j < n; j++)
            {
                batch[j] = ConnectionEvent.Create(ConnectionEventKind.New, KeyOf(i + j), state, timeoutSeconds, nowMs);
            }

            member.Submit(batch.AsSpan(0, n));
            i += n;
        }
    }

    /// <summary>Polls <paramref name="condition"/> every 50 ms; false when <paramref name="timeout"/> passes first.</summary>
    public static bool WaitFor(Func<bool> condition, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > timeout)
            {
                return false;
            }

            Thread.Sleep(50);
        }

        return true;
    }
}

internal static class BenchJson
{
    public static readonly JsonSerializerOptions Options = new() { WriteIndented = false };
}
