namespace ClusterSync.Plugins.Conntrack.Tests.Kernel;

/// <summary>
/// Without CAP_NET_ADMIN the factory refuses at creation with <see cref="ConntrackAccessException"/> (an
/// <see cref="UnauthorizedAccessException"/> whose message names the capability), which a host turns into exit 2.
/// Capabilities are per thread on Linux: the test drops CAP_NET_ADMIN from the effective set of one thread only.
/// </summary>
public sealed partial class AccessDeniedTests
{
    private const int CapNetAdmin = 12;

    [NetnsFact]
    public void CreateSourceAndSink_WithoutCapNetAdmin_AccessExceptionNamingTheCapability()
    {
        var factory = new ConntrackFactory();
        var errors = WithoutCapNetAdmin(() => new Exception?[]
        {
            Catch(() => factory.CreateSource(Context())),
            Catch(() => factory.CreateSink(Context())),
        });
        Assert.All(errors, e =>
        {
            var denied = Assert.IsType<ConntrackAccessException>(e);
            Assert.IsAssignableFrom<UnauthorizedAccessException>(denied);
            Assert.Contains("CAP_NET_ADMIN", denied.Message, StringComparison.Ordinal);
            Assert.Contains("EPERM", denied.Message, StringComparison.Ordinal);
        });
    }

    private static Exception? Catch(Func<object?> create)
    {
        try
        {
            switch (create())
            {
                case IAsyncDisposable d:
                    d.DisposeAsync().AsTask().Wait();
                    break;
                case IDisposable d:
                    d.Dispose();
                    break;
            }

            return null;
        }
        catch (Exception ex)
        {
            return ex;
        }
    }

    private static T WithoutCapNetAdmin<T>(Func<T> action)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                var header = new CapHeader { Version = 0x20080522, Pid = 0 };   // _LINUX_CAPABILITY_VERSION_3, this thread
                var data = new CapData[2];
                Assert.Equal(0, CapGet(ref header, data));
                data[0].Effective &= ~(1u << CapNetAdmin);
                Assert.Equal(0, CapSet(ref header, data));
                result = action();
            }
            catch (Exception ex)
            {
                error = ex;
            }
        });
        thread.Start();
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)));
        return error is null ? result : throw new AggregateException(error);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapHeader
    {
        public uint Version;
        public int Pid;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapData
    {
        public uint Effective;
        public uint Permitted;
        public uint Inheritable;
    }

    [LibraryImport("libc", EntryPoint = "capget", SetLastError = true)]
    private static partial int CapGet(ref CapHeader header, [Out] CapData[] data);

    [LibraryImport("libc", EntryPoint = "capset", SetLastError = true)]
    private static partial int CapSet(ref CapHeader header, [In] CapData[] data);
}
