namespace ClusterSync.Membership;

/// <summary>Member states carried in heartbeats (ClusterXL's CCP states, in ClusterSync's terms).</summary>
public enum MemberState : byte
{
    /// <summary>Starting; not yet synchronized.</summary>
    Init = 0,
    /// <summary>Pulling a full sync; cannot take over yet.</summary>
    Syncing = 1,
    /// <summary>Holds a complete replica; ready to take over.</summary>
    Standby = 2,
    /// <summary>Serving traffic and announcing its connections.</summary>
    Active = 3,
    /// <summary>Declared dead (missed heartbeats) or stopped.</summary>
    Down = 4,
    /// <summary>
    /// Administratively down (<c>clustersync admin down</c>, or between handing the Active role over and seeing the
    /// successor Active): alive and replicating, but out of every election. While in this state the member's heartbeats
    /// carry, in the priority field, the member it handed the Active role to (0: none); see MembershipController.Admin.cs.
    /// </summary>
    Maintenance = 5,
    /// <summary>
    /// Taking the Active role over: announced the moment this member decides, while its replica is committed into its
    /// data plane off the control tick; Active once the commit is done. Peers treat it as Active in the election (a
    /// lower-ranked Standby does not take over beside it; one of higher rank makes it abandon the promotion), and a
    /// Promoting member that dies is replaced, after the dead interval, like a dead Active.
    /// </summary>
    Promoting = 6,
}

/// <summary>How members share the work.</summary>
public enum ClusterMode : byte
{
    /// <summary>One Active member; the others are Standby.</summary>
    HighAvailability,
    /// <summary>Every member Active; each connection has one owner.</summary>
    LoadSharing,
}

/// <summary>What a member knows of another (or itself) when it decides its state.</summary>
public readonly record struct MemberView(byte Id, byte Priority, MemberState State, bool Alive)
{
    /// <summary>Eligible to be (or stay) Active: alive and holding a complete replica.</summary>
    public bool Eligible => Alive && State is MemberState.Standby or MemberState.Active or MemberState.Promoting;

    /// <summary>Active, or Promoting (taking the role over, its commit under way): what the election counts as holding the role.</summary>
    public bool HoldsRole => State is MemberState.Active or MemberState.Promoting;

    /// <summary>True when this member outranks <paramref name="other"/>: higher priority, then lower id.</summary>
    public bool Outranks(in MemberView other) => Priority != other.Priority ? Priority > other.Priority : Id < other.Id;
}
