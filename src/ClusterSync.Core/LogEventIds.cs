namespace ClusterSync;

/// <summary>
/// The one list of <c>[LoggerMessage]</c> event id ranges: every area (namespace) owns a range, and each of its log
/// messages takes a fixed id inside it. A new area adds its row here; the architecture test fails on a duplicate id
/// across all production assemblies and on an id outside its area's range.
/// </summary>
/// <remarks>
/// <code>
/// range        area (namespace prefix)            where
/// 1000-1099    ClusterSync.Engine                 Core/Engine/SyncEngine.Log.cs
/// 1100-1199    ClusterSync.Reliability            Core/Reliability
/// 1170-1179    ClusterSync.Engine.Scheduling      Core/Engine/Scheduling (the sync threads' scheduler setting)
/// 1200-1299    ClusterSync.Transport              Core/Transport
/// 1300-1399    ClusterSync.Membership             Core/Membership/MembershipController*.cs
/// 1400-1499    ClusterSync.Security               Core/Security
/// 1500-1599    ClusterSync.Policy                 Core/Policy
/// 1600-1699    ClusterSync.Table, ClusterSync.Protocol, ClusterSync.Connections
/// 2000-2099    ClusterSync.FullSync               Core/FullSync/FullSyncCounters.cs
/// 3000-3099    ClusterSync.Node.Plugins           Node/Plugins (catalog 30xx, data plane 302x, its connection templates 3040-3049)
/// 4000-4099    ClusterSync.Node.Runtime           Node/Runtime (NodeRuntime and its generator 40xx, NodePlugins 4030-4039, AdaptiveNode 4050-4059, StateHooks 4060-4079, ServiceManagerNotifier 4080-4089)
/// 4100-4199    ClusterSync.Node.Control           Node/Control, Node/Control/Http (AdminRoutes 4110-4119)
/// 4200-4299    ClusterSync.Node.DataPlanes        Node/DataPlanes (feed 420x)
/// 4300-4399    ClusterSync.Node.Configuration
/// 4400-4499    ClusterSync.Node (other folders)
/// 5000-5099    ClusterSync.Adaptive               Adaptive/Controller/AdaptiveController.Log.cs
/// 5100-5199    ClusterSync.Telemetry              Telemetry/TelemetryRecorder.cs
/// 6000-6099    ClusterSync.Training
/// 7000-7099    ClusterSync.Cli
/// 8000-8099    ClusterSync.Workload
/// </code>
/// </remarks>
public static class LogEventIds
{
    /// <summary>The ranges above: namespace prefix (the longest matching prefix wins), first and last id.</summary>
    public static IReadOnlyList<(string NamespacePrefix, int First, int Last)> Ranges { get; } =
    [
        ("ClusterSync.Engine", 1000, 1099),
        ("ClusterSync.Reliability", 1100, 1199),
        ("ClusterSync.Engine.Scheduling", 1170, 1179),
        ("ClusterSync.Transport", 1200, 1299),
        ("ClusterSync.Membership", 1300, 1399),
        ("ClusterSync.Security", 1400, 1499),
        ("ClusterSync.Policy", 1500, 1599),
        ("ClusterSync.Table", 1600, 1699),
        ("ClusterSync.Protocol", 1600, 1699),
        ("ClusterSync.Connections", 1600, 1699),
        ("ClusterSync.FullSync", 2000, 2099),
        ("ClusterSync.Node.Plugins", 3000, 3099),
        ("ClusterSync.Node.Runtime", 4000, 4099),
        ("ClusterSync.Node.Control", 4100, 4199),
        ("ClusterSync.Node.DataPlanes", 4200, 4299),
        ("ClusterSync.Node.Configuration", 4300, 4399),
        ("ClusterSync.Node", 4400, 4499),
        ("ClusterSync.Adaptive", 5000, 5099),
        ("ClusterSync.Telemetry", 5100, 5199),
        ("ClusterSync.Training", 6000, 6099),
        ("ClusterSync.Cli", 7000, 7099),
        ("ClusterSync.Workload", 8000, 8099),
    ];
}
