using System.Net;
using ClusterSync.Engine;
using ClusterSync.Security;

namespace ClusterSync.Cli.Node;

/// <summary>A configuration that passed validation, with what was derived from it (the key, the endpoints, the engine options).</summary>
internal sealed record LoadedNodeConfig(
    string Path,
    NodeConfig Config,
    ClusterKey? Key,
    MemberConfig Self,
    int SelfIndex,
    IPEndPoint LocalEndPoint,
    IReadOnlyList<MemberConfig> PeerMembers,
    IReadOnlyList<IPEndPoint> PeerEndPoints,
    SyncEngineOptions EngineOptions,
    uint GeneratorSourceBase);
