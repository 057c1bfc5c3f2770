using ClusterSync.Policy;

namespace ClusterSync.Node.Configuration;

/// <summary>
/// The <c>sync</c> section (the engine's own validation of its knobs, and the socket buffers) and the <c>policy</c>
/// section (the service classes). Collects every error.
/// </summary>
internal static class SyncValidator
{
    public static void Validate(NodeConfig c, ConfigurationErrors errors)
    {
        // Identity and policy are not the engine's knobs: a placeholder member and the default policy here.
        errors.AddRange(c.Sync.ToEngineOptions(1, [], insecure: true, new PolicyOptions()).Validate("sync"));
        if (c.Sync.SocketBufferBytes is < 64 * 1024 or > 1 << 30)
        {
            errors.Add("sync.socketBufferBytes", $"expected 65536 to 1073741824, found {c.Sync.SocketBufferBytes}");
        }

        if (Engine.Scheduling.SyncThreadScheduling.Parse(c.Sync.Scheduler.Policy) is null)
        {
            errors.Add("sync.scheduler.policy", $"expected 'other', 'fifo' or 'rr', found '{c.Sync.Scheduler.Policy}'");
        }

        errors.AddRange(c.Policy.Validate("policy"));
    }
}
