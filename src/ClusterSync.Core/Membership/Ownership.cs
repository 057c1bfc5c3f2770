using ClusterSync.Connections;

namespace ClusterSync.Membership;

/// <summary>
/// Load-sharing ownership: each connection belongs to one member, the same for both directions of the
/// connection (the hash is over the canonical, direction-free tuple), chosen by rendezvous hashing among the
/// live members, so when a member comes or goes only the connections it gains or loses change owner.
/// </summary>
public static class Ownership
{
    /// <summary>A hash of the connection that is the same for its original and its reply direction.</summary>
    public static ulong SymmetricHash(in ConnectionKey key)
    {
        // Order the two endpoints so that (a -> b) and (b -> a) give the same input.
        var (aHi, aLo, aPort) = (key.SourceHigh, key.SourceLow, key.SourcePort);
        var (bHi, bLo, bPort) = (key.DestinationHigh, key.DestinationLow, key.DestinationPort);
        bool swap = aHi > bHi || (aHi == bHi && (aLo > bLo || (aLo == bLo && aPort > bPort)));
        if (swap)
        {
            (aHi, aLo, aPort, bHi, bLo, bPort) = (bHi, bLo, bPort, aHi, aLo, aPort);
        }

        ulong h = Mix(((ulong)key.Protocol << 16) | key.Zone);
        h = Mix(h ^ aHi);
        h = Mix(h ^ aLo);
        h = Mix(h ^ ((ulong)aPort << 16 | bPort));
        h = Mix(h ^ bHi);
        h = Mix(h ^ bLo);
        return h;
    }

    /// <summary>The key of the reply direction (what a packet coming back looks like), for symmetric lookups.</summary>
    public static ConnectionKey ReplyKey(in ConnectionKey key, in ReplyTuple reply)
        => key.IsIPv6
            ? ConnectionKey.IPv6(reply.SourceHigh, reply.SourceLow, reply.DestinationHigh, reply.DestinationLow, reply.SourcePort, reply.DestinationPort, key.Protocol, key.Zone)
            : ConnectionKey.IPv4((uint)reply.SourceLow, (uint)reply.DestinationLow, reply.SourcePort, reply.DestinationPort, key.Protocol, key.Zone);

    /// <summary>The owner among <paramref name="liveMembers"/> (highest rendezvous weight), or 0 when none is live.</summary>
    public static byte OwnerOf(in ConnectionKey key, ReadOnlySpan<byte> liveMembers)
    {
        ulong h = SymmetricHash(key);
        byte best = 0;
        ulong bestWeight = 0;
        foreach (byte m in liveMembers)
        {
            ulong w = Mix(h ^ (0x9E37_79B9_7F4A_7C15UL * m));
            if (best == 0 || w > bestWeight || (w == bestWeight && m < best))
            {
                best = m;
                bestWeight = w;
            }
        }

        return best;
    }

    private static ulong Mix(ulong x)
    {
        // splitmix64 finaliser: well spread, deterministic on every member and every platform.
        x += 0x9E37_79B9_7F4A_7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58_476D_1CE4_E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D0_49BB_1331_11EBUL;
        return x ^ (x >> 31);
    }
}
