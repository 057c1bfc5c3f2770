namespace ClusterSync.EndToEndTests.Workload;

/// <summary>Round trips completed per long-lived connection at <see cref="UnixMs"/> (the helper's wall clock), and the short stream's tally.</summary>
internal sealed record Progress(long UnixMs, long ShortOk, long ShortFailed, long[] Counts);

/// <summary>
/// The workload through the firewalls: the traffic helper (<c>tests/ClusterSync.EndToEndTests.Traffic</c>) as echo
/// server in the server namespace and as client pool in the client namespace — long-lived connections exchanging 32
/// bytes every <c>interval</c>, plus a stream of short connections — parsed from the helper's stdout lines.
/// </summary>
internal sealed class TrafficWorkload
{
    public const int Port = 7000;

    private readonly object _sync = new();
    private readonly TaskCompletionSource<bool> _established = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<int, string> _dead = [];
    private readonly int[] _ports;
    private Progress? _latest;
    private string? _failure;

    private TrafficWorkload(int longLived) => _ports = new int[longLived];

    public Netns.NsProcess Server { get; private set; } = null!;

    public Netns.NsProcess Clients { get; private set; } = null!;

    /// <summary>Client port of each long-lived connection (index = connection number).</summary>
    public IReadOnlyList<int> ClientPorts => _ports;

    public Progress? Latest
    {
        get
        {
            lock (_sync)
            {
                return _latest;
            }
        }
    }

    /// <summary>Long-lived connections the client saw reset or closed, with the reason.</summary>
    public IReadOnlyDictionary<int, string> Dead
    {
        get
        {
            lock (_sync)
            {
                return new Dictionary<int, string>(_dead);
            }
        }
    }

    /// <summary>The helper as built by its own project, in the test's configuration.</summary>
    public static string HelperDll()
    {
        var configuration = Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar))) ?? "Release";
        var dll = Path.Combine(CliProcess.RepositoryRoot(), "tests", "ClusterSync.EndToEndTests.Traffic", "bin", configuration, "net10.0", "cse2e-traffic.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("build tests/ClusterSync.EndToEndTests.Traffic first", dll);
    }

    /// <summary>
    /// Starts the echo server, then <paramref name="longLived"/> connections one after another (each connected and
    /// echoed once), then the short stream at <paramref name="shortPerSecond"/>; returns once all long-lived ones are up.
    /// </summary>
    public static async Task<TrafficWorkload> StartAsync(Netns.FirewallPair net, int longLived, int shortPerSecond, int intervalMs = 50)
    {
        var w = new TrafficWorkload(longLived);
        string dll = HelperDll();
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        w.Server = net.Start("echo", net.Server, "dotnet", [dll, "echo", "--port", Port.ToString(CultureInfo.InvariantCulture)], line =>
        {
            if (line.StartsWith("LISTENING", StringComparison.Ordinal))
            {
                listening.TrySetResult();
            }
        });
        await Wait(listening.Task, w.Server, TimeSpan.FromSeconds(30), "the echo server listening");

        w.Clients = net.Start("clients", net.Client, "dotnet",
            [dll, "clients", "--server", $"{Netns.FirewallPair.ServerAddress}:{Port}", "--long", Str(longLived), "--interval-ms", Str(intervalMs),
             "--short-rate", Str(shortPerSecond), "--report-ms", "100"], w.OnLine);
        await Wait(w._established.Task, w.Clients, TimeSpan.FromSeconds(60), $"{longLived} long-lived connections established");
        return w;
    }

    /// <summary>The first progress report taken at or after <paramref name="unixMs"/> (wall clock).</summary>
    public async Task<Progress> ProgressAtOrAfterAsync(long unixMs, TimeSpan timeout)
    {
        Progress? found = null;
        bool held = await TestUtilities.Wait.UntilAsync(
            () =>
            {
                found = Latest is { } p && p.UnixMs >= unixMs ? p : null;
                return Task.FromResult(found is not null);
            },
            timeout,
            () => Assert.False(Clients.HasExited, $"the client pool exited:\n{Clients.Log}"),
            poll: TimeSpan.FromMilliseconds(20));
        if (held)
        {
            return found!;
        }

        throw new TimeoutException($"no progress report after {unixMs} within {timeout.TotalSeconds:F0} s:\n{Clients.Log}");
    }

    private static string Str(int n) => n.ToString(CultureInfo.InvariantCulture);

    private static async Task Wait(Task task, Netns.NsProcess process, TimeSpan timeout, string what)
    {
        var done = await Task.WhenAny(task, Task.Delay(timeout));
        if (done != task)
        {
            Assert.Fail($"timed out after {timeout.TotalSeconds:F0} s waiting for {what} ({process.Name} exited: {process.HasExited}):\n{process.Log}");
        }

        await task;
    }

    private void OnLine(string line)
    {
        var parts = line.Split(' ', 4);
        switch (parts[0])
        {
            case "P" when parts.Length >= 4:
                var all = line.Split(' ');
                var counts = new long[all.Length - 4];
                for (int i = 0; i < counts.Length; i++)
                {
                    counts[i] = long.Parse(all[i + 4], CultureInfo.InvariantCulture);
                }

                var p = new Progress(long.Parse(all[1], CultureInfo.InvariantCulture), long.Parse(all[2], CultureInfo.InvariantCulture), long.Parse(all[3], CultureInfo.InvariantCulture), counts);
                lock (_sync)
                {
                    _latest = p;
                }

                break;
            case "LONG" when parts.Length >= 3:
                _ports[int.Parse(parts[1], CultureInfo.InvariantCulture)] = IPEndPoint.Parse(parts[2]).Port;
                break;
            case "ESTABLISHED":
                _established.TrySetResult(true);
                break;
            case "FAILED":
                _failure = line;
                _established.TrySetException(new InvalidOperationException($"a long-lived connection could not be established: {_failure}"));
                break;
            case "DEAD" when parts.Length >= 2:
                lock (_sync)
                {
                    _dead[int.Parse(parts[1], CultureInfo.InvariantCulture)] = line;
                }

                break;
        }
    }
}
