namespace ClusterSync.Connections;

/// <summary>Protocol state of a connection. TCP values follow Linux conntrack's TCP state numbering.</summary>
public enum ProtocolState : byte
{
    /// <summary>No state (other protocols).</summary>
    None = 0,
    /// <summary>TCP SYN sent.</summary>
    TcpSynSent = 1,
    /// <summary>TCP SYN received.</summary>
    TcpSynReceived = 2,
    /// <summary>TCP established.</summary>
    TcpEstablished = 3,
    /// <summary>TCP FIN wait.</summary>
    TcpFinWait = 4,
    /// <summary>TCP close wait.</summary>
    TcpCloseWait = 5,
    /// <summary>TCP last ACK.</summary>
    TcpLastAck = 6,
    /// <summary>TCP time wait.</summary>
    TcpTimeWait = 7,
    /// <summary>TCP closed.</summary>
    TcpClose = 8,
    /// <summary>TCP simultaneous open.</summary>
    TcpSynSent2 = 9,
    /// <summary>UDP, no reply seen yet.</summary>
    UdpUnreplied = 16,
    /// <summary>UDP, replies seen (a stream).</summary>
    UdpReplied = 17,
    /// <summary>ICMP exchange in progress.</summary>
    IcmpActive = 32,
    /// <summary>Another protocol, active.</summary>
    OtherActive = 48,
}
