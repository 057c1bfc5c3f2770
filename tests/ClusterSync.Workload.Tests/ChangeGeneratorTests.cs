using ClusterSync.Membership;

namespace ClusterSync.Workload.Tests;

public sealed class ChangeGeneratorTests
{
    private static readonly byte[] s_four = [1, 2, 3, 4];

    [Fact]
    public void Next_WithOwnershipAccept_OpensOnlyOwnedConnectionsAndTouchesOnlyThem()
    {
        var g = new ChangeGenerator(seed: 7, population: 2000) { Accept = k => Ownership.OwnerOf(k, s_four) == 2 };
        var change = default(ConnectionEvent);
        var opened = new HashSet<ConnectionKey>();
        for (int i = 0; i < 5000; i++)
        {
            Assert.True(g.Next(ref change, 1000));
            Assert.Equal(2, Ownership.OwnerOf(change.Key, s_four));
            if (change.Kind == ConnectionEventKind.New)
            {
                opened.Add(change.Key);
            }
            else
            {
                Assert.Contains(change.Key, opened);
            }
        }

        Assert.True(opened.Count >= 1000, $"only {opened.Count} opened");
    }

    [Fact]
    public void Next_AcceptRefusesEverythingAndNothingLive_ReturnsFalse()
    {
        var g = new ChangeGenerator(seed: 7, population: 100) { Accept = _ => false };
        var change = default(ConnectionEvent);

        Assert.False(g.Next(ref change, 1000));
        Assert.Equal(0, g.LiveCount);
    }

    [Fact]
    public void RetainAndAddLive_OwnerSetShrinks_DropsMovedConnectionsAndDrivesTakenOverOnes()
    {
        byte[] three = [1, 2, 3];
        var mine = new ChangeGenerator(seed: 3, population: 4000) { Accept = k => Ownership.OwnerOf(k, s_four) == 1 };
        var dead = new ChangeGenerator(seed: 4, population: 4000, addressBase: 0x0A04_0000) { Accept = k => Ownership.OwnerOf(k, s_four) == 4 };
        var change = default(ConnectionEvent);
        for (int i = 0; i < 1000; i++)
        {
            mine.Next(ref change, 1);
            dead.Next(ref change, 1);
        }

        int before = mine.LiveCount;
        // Member 4 dies: member 1 keeps all of its own (rendezvous: nothing moves away from a survivor) and takes over
        // the connections of member 4 that hash to it under {1,2,3}.
        var deadKeys = new List<ConnectionKey>();
        dead.Retain(k => { deadKeys.Add(k); return true; });
        var gained = deadKeys.Where(k => Ownership.OwnerOf(k, three) == 1).ToList();

        Assert.Equal(0, mine.Retain(k => Ownership.OwnerOf(k, three) == 1));
        Assert.Equal(gained.Count, mine.AddLive(gained));
        Assert.Equal(0, mine.AddLive(gained)); // already live: not added twice
        Assert.Equal(before + gained.Count, mine.LiveCount);
        Assert.InRange(gained.Count, deadKeys.Count / 5, deadKeys.Count / 2);

        // Member 4 returns: member 1 drops exactly what goes back to it.
        Assert.Equal(gained.Count, mine.Retain(k => Ownership.OwnerOf(k, s_four) == 1));
        Assert.Equal(before, mine.LiveCount);
    }
}
