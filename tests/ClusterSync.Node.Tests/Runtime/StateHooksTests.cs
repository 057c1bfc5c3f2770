using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterSync.Node.Tests.Runtime;

/// <summary>The state hooks' fault path: <c>onFault</c> runs once when the member can no longer synchronize, with the reason.</summary>
public sealed class StateHooksTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-hooks-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task OnFault_EngineFails_RunsOnceWithStateFaultAndTheReason()
    {
        string script = Path.Combine(_dir, "fault.sh");
        string record = Path.Combine(_dir, "fault.log");
        File.WriteAllText(script, $"#!/bin/sh\necho \"$CLUSTERSYNC_EVENT|$CLUSTERSYNC_STATE|$CLUSTERSYNC_REASON|$1\" >> '{record}'\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string? failure = null;
        int polls = 0;
        var hooks = new StateHooks(new HooksConfig { OnFault = [script, "{state}"] }, Path.Combine(_dir, "node.json"), 1, null,
            () =>
            {
                Interlocked.Increment(ref polls);
                return Volatile.Read(ref failure);
            }, TimeProvider.System, NullLogger.Instance);
        hooks.Start(null);
        try
        {
            Volatile.Write(ref failure, "receiver failed: socket closed");
            Assert.True(await Wait.UntilAsync(() => Task.FromResult(File.Exists(record) && hooks.Counts.Run == 1), TimeSpan.FromSeconds(10)), "onFault did not run");
            int after = Volatile.Read(ref polls);
            Assert.True(await Wait.UntilAsync(() => Task.FromResult(Volatile.Read(ref polls) >= after + 3), TimeSpan.FromSeconds(10)), "the fault was not polled again");
        }
        finally
        {
            await hooks.DisposeAsync();
        }

        Assert.Equal(["onFault|Fault|receiver failed: socket closed|Fault"], File.ReadAllLines(record));
        Assert.Equal((1L, 0L, 0L), hooks.Counts);
    }
}
