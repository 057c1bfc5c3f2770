using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ClusterSync.IntegrationTests.Node;

/// <summary>Runs the built <c>clustersync.dll</c> as a separate OS process; output is collected; disposing kills what still runs.</summary>
internal sealed class NodeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private static readonly List<NodeProcess> s_started = [];

    private NodeProcess(Process process)
    {
        _process = process;
        lock (s_started)
        {
            s_started.Add(this);
        }
    }

    /// <summary>
    /// True once a started node has logged that its control endpoint listens at <paramref name="endpoint"/>. Tests
    /// poll only after that: the managed HttpListener on Unix can fail its own Start() (ArgumentNullException in
    /// HttpEndPointListener) when a client connects while it is starting, which a 20 ms poller makes likely.
    /// </summary>
    public static bool ControlReady(string endpoint)
    {
        lock (s_started)
        {
            return s_started.Exists(n => n.Output.Contains($"Control endpoint on {endpoint}/", StringComparison.Ordinal));
        }
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClusterSync.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException($"no ClusterSync.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>The CLI as built by its own project (same configuration as the tests), so its runtimeconfig and deps are its own.</summary>
    public static string CliDll()
    {
        var configuration = Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar))) ?? "Release";
        var dll = Path.Combine(RepositoryRoot(), "src", "ClusterSync.Cli", "bin", configuration, "net10.0", "clustersync.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("build src/ClusterSync.Cli first", dll);
    }

    public static NodeProcess Start(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(CliDll());
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        var process = new Process { StartInfo = info };
        var node = new NodeProcess(process);
        process.OutputDataReceived += (_, e) => node.Append(e.Data);
        process.ErrorDataReceived += (_, e) => node.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    /// <summary>Runs the CLI to completion (bounded by <paramref name="timeout"/>); returns its exit code and output.</summary>
    public static async Task<(int Code, string Output)> RunAsync(TimeSpan timeout, params string[] args)
    {
        await using var p = Start(args);
        using var cts = new CancellationTokenSource(timeout);
        await p._process.WaitForExitAsync(cts.Token);
        return (p.ExitCode, p.Output);
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>Kills the process at once (SIGKILL on Linux): no shutdown, no last heartbeat, as a crash or power loss.</summary>
    public void Kill() => _process.Kill();

    /// <summary>Asks the process to stop as a service manager would (SIGTERM).</summary>
    public async Task TerminateAsync()
    {
        using var kill = Process.Start("kill", ["-TERM", Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(cts.Token);
            }
        }
        catch (InvalidOperationException)
        {
        }
        finally
        {
            _process.Dispose();
        }
    }

    /// <summary>
    /// Writes <paramref name="dir"/>/node.json for a one-member insecure cluster on free ports (sync, full sync,
    /// control; <c>sync.tableCapacity</c> 16384) with <paramref name="sections"/> (further top-level JSON members, each
    /// line ending in a comma but the last) appended; returns its path and the control endpoint.
    /// </summary>
    public static (string Config, string Endpoint) WriteSingleMemberConfig(string dir, string sections)
    {
        int sync = FreeUdpPort(), control = FreeTcpPort(), fullSync = FreeTcpPort();
        var config = Path.Combine(dir, "node.json");
        File.WriteAllText(config, $$"""
            {
              "cluster": { "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:{{sync}}", "fullSyncPort": {{fullSync}} } ] },
              "node": { "memberId": 1, "control": { "port": {{control}} } },
              "sync": { "tableCapacity": 16384 },
              {{sections}}
            }
            """);
        return (config, $"http://127.0.0.1:{control}");
    }

    // Ports handed out in this test run: the OS may give a just-released port again, and a node configuration with
    // the same port twice (sync, full sync, control) is rightly refused, so never hand one out twice.
    private static readonly HashSet<int> s_handedOut = [];

    /// <summary>A port the OS considered free a moment ago (bound to 0, then released), never handed out before.</summary>
    public static int FreeUdpPort() => Unique(() =>
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    });

    public static int FreeTcpPort() => Unique(() =>
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    });

    private static int Unique(Func<int> pick)
    {
        lock (s_handedOut)
        {
            for (int attempt = 0; attempt < 100; attempt++)
            {
                int port = pick();
                if (s_handedOut.Add(port))
                {
                    return port;
                }
            }
        }

        throw new InvalidOperationException("no fresh ephemeral port after 100 attempts");
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }
}
