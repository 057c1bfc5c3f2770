namespace ClusterSync.Core.Tests.Membership;

public sealed class OwnershipTests
{
    private static List<ConnectionKey> Keys(int count, int seed)
    {
        var random = new Random(seed);
        var keys = new List<ConnectionKey>(count);
        for (int i = 0; i < count; i++)
        {
            byte proto = random.Next(3) switch { 0 => 6, 1 => 17, _ => 132 };
            keys.Add(i % 5 == 0
                ? ConnectionKey.IPv6((ulong)random.NextInt64(), (ulong)random.NextInt64(), (ulong)random.NextInt64(), (ulong)random.NextInt64(),
                    (ushort)random.Next(65536), (ushort)random.Next(65536), proto, (ushort)random.Next(4))
                : ConnectionKey.IPv4((uint)random.Next(), (uint)random.Next(), (ushort)random.Next(65536), (ushort)random.Next(65536), proto, (ushort)random.Next(4)));
        }

        return keys;
    }

    private static ConnectionKey Reverse(in ConnectionKey k) => Ownership.ReplyKey(k, k.InverseTuple);

    [Fact]
    public void SymmetricHash_BothDirections_Equal()
    {
        foreach (var key in Keys(20_000, 1))
        {
            var back = Reverse(key);
            Assert.NotEqual(key, back);
            Assert.Equal(Ownership.SymmetricHash(key), Ownership.SymmetricHash(back));
        }
    }

    [Fact]
    public void SymmetricHash_DifferentZoneOrProtocol_Differs()
    {
        var tcp = ConnectionKey.IPv4(0x0A000001, 0x0A000002, 1000, 443, 6, 0);
        Assert.NotEqual(Ownership.SymmetricHash(tcp), Ownership.SymmetricHash(ConnectionKey.IPv4(0x0A000001, 0x0A000002, 1000, 443, 17, 0)));
        Assert.NotEqual(Ownership.SymmetricHash(tcp), Ownership.SymmetricHash(ConnectionKey.IPv4(0x0A000001, 0x0A000002, 1000, 443, 6, 1)));
    }

    [Fact]
    public void OwnerOf_BothDirections_SameOwner()
    {
        byte[] members = [1, 2, 3, 4];
        foreach (var key in Keys(20_000, 2))
        {
            Assert.Equal(Ownership.OwnerOf(key, members), Ownership.OwnerOf(Reverse(key), members));
        }
    }

    [Fact]
    public void OwnerOf_FourMembers_LoadIsBalanced()
    {
        byte[] members = [1, 2, 3, 4];
        var counts = Keys(100_000, 3).GroupBy(k => Ownership.OwnerOf(k, members)).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(4, counts.Count);
        Assert.All(counts.Values, c => Assert.InRange(c, 23_000, 27_000));
    }

    [Fact]
    public void OwnerOf_OneOfFourMembersDies_OnlyItsConnectionsMove()
    {
        byte[] before = [1, 2, 3, 4];
        byte[] after = [1, 2, 4];
        int moved = 0;
        var gained = new Dictionary<byte, int>();
        foreach (var key in Keys(100_000, 4))
        {
            byte was = Ownership.OwnerOf(key, before);
            byte now = Ownership.OwnerOf(key, after);
            if (was != 3)
            {
                Assert.Equal(was, now); // a connection of a surviving member never moves
            }
            else
            {
                moved++;
                Assert.NotEqual((byte)3, now);
                gained[now] = gained.GetValueOrDefault(now) + 1;
            }
        }

        Assert.InRange(moved, 23_000, 27_000);
        Assert.Equal(3, gained.Count); // spread over all survivors, not dumped on one
    }

    [Fact]
    public void OwnerOf_MemberJoins_OnlyConnectionsItTakesMove()
    {
        byte[] before = [1, 2, 3];
        byte[] after = [1, 2, 3, 4];
        foreach (var key in Keys(50_000, 5))
        {
            byte was = Ownership.OwnerOf(key, before);
            byte now = Ownership.OwnerOf(key, after);
            Assert.True(now == was || now == 4);
        }
    }

    [Fact]
    public void OwnerOf_NoLiveMember_Zero()
    {
        Assert.Equal(0, Ownership.OwnerOf(ConnectionKey.IPv4(1, 2, 3, 4, 6), []));
    }

    [Fact]
    public void OwnerOf_OrderOfMemberList_Irrelevant()
    {
        foreach (var key in Keys(5_000, 6))
        {
            Assert.Equal(Ownership.OwnerOf(key, [1, 2, 3, 4]), Ownership.OwnerOf(key, [4, 2, 1, 3]));
        }
    }
}
