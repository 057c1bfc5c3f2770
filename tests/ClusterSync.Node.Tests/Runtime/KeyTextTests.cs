namespace ClusterSync.Node.Tests.Runtime;

public sealed class KeyTextTests
{
    [Fact]
    public void Format_RandomKeys_SameTextAsToString()
    {
        var random = new Random(7);
        Span<char> text = stackalloc char[KeyText.MaxLength];
        byte[] protocols = [6, 17, 1, 58, 47, 0, 255];
        for (int i = 0; i < 2000; i++)
        {
            byte protocol = protocols[i % protocols.Length];
            var key = i % 5 == 0
                ? ConnectionKey.IPv6((ulong)random.NextInt64(), (ulong)random.NextInt64(), (ulong)random.NextInt64(), (ulong)random.NextInt64(),
                    (ushort)random.Next(65536), (ushort)random.Next(65536), protocol, (ushort)random.Next(65536))
                : ConnectionKey.IPv4((uint)random.NextInt64(), i == 1 ? uint.MaxValue : (uint)random.NextInt64(), (ushort)random.Next(65536), (ushort)random.Next(65536), protocol,
                    (ushort)random.Next(65536));

            Assert.Equal(key.ToString(), text[..KeyText.Format(key, text)].ToString());
        }
    }
}
