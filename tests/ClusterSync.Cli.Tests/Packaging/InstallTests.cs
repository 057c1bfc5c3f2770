using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace ClusterSync.Cli.Tests.Packaging;

/// <summary>
/// <c>packaging/</c> as an operator uses it: <c>dotnet publish</c> of the CLI, <c>packaging/install.sh --root</c> into a
/// temporary root, and the installed unit's own <c>ExecStart</c> run with the temporary root's paths, under a stand-in
/// for systemd's notify socket. The test publishes framework-dependent from the existing build (<c>--no-build</c>,
/// seconds) rather than self-contained (the <c>linux-x64</c> profile restores and copies a runtime: minutes on a
/// loaded machine); the layout (plugins/, models/ next to the binary) is the same.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class InstallTests(ITestOutputHelper log) : IDisposable
{
    private static readonly TimeSpan s_publishTimeout = TimeSpan.FromMinutes(5);
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-install-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Where the running .NET is (the framework-dependent apphost needs it when it is not in a default place).</summary>
    private static string DotnetRoot() => Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));

    private static string Configuration() => Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar))) ?? "Release";

    [SkippableFact]
    public async Task PublishAndInstall_IntoTemporaryRoot_UnitExecStartRunsInstalledNodeToReadyAndStopsOnSigterm()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "packaging/install.sh and the systemd unit are for Linux");
        string repo = CliProcess.RepositoryRoot();
        string publish = Path.Combine(_dir, "publish");
        string root = Path.Combine(_dir, "root");
        var env = new Dictionary<string, string?> { ["DOTNET_ROOT"] = DotnetRoot(), ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" };

        // 1. Publish (framework-dependent, from the build the tests run against) and install into the temporary root.
        var started = Stopwatch.StartNew();
        await using (var published = await CliProcess.RunProgramAsync(s_publishTimeout, "dotnet publish", "dotnet",
            ["publish", Path.Combine(repo, "src", "ClusterSync.Cli", "ClusterSync.Cli.csproj"), "-c", Configuration(), "--no-build", "-o", publish, "-nologo", "-v", "q"], env))
        {
            Assert.True(published.ExitCode == 0, published.Output);
        }

        log.WriteLine($"dotnet publish --no-build: {started.Elapsed.TotalSeconds:0.0} s");
        await using (var install = await CliProcess.RunProgramAsync(TimeSpan.FromMinutes(2), "install.sh", "bash",
            [Path.Combine(repo, "packaging", "install.sh"), "--root", root, "--from", publish], env))
        {
            log.WriteLine(install.Output);
            Assert.True(install.ExitCode == 0, install.Output);
        }

        string lib = Path.Combine(root, "usr", "lib", "clustersync");
        string etc = Path.Combine(root, "etc", "clustersync");
        string state = Path.Combine(root, "var", "lib", "clustersync");
        var onPath = new FileInfo(Path.Combine(root, "usr", "bin", "clustersync"));
        Assert.Equal("../lib/clustersync/clustersync", onPath.LinkTarget);
        Assert.Equal(Path.Combine(lib, "clustersync"), onPath.ResolveLinkTarget(returnFinalTarget: true)?.FullName);
        Assert.True(File.Exists(Path.Combine(lib, "models", "lifetime.zip")), "the shipped model is installed");
        Assert.True(File.Exists(Path.Combine(lib, "plugins", "Classifier.PortProtocol", "Classifier.PortProtocol.dll")), "the shipped plugins are installed");
        foreach (var secret in new[] { "cluster.key", "control.token" })
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(etc, secret)));
        }

        Assert.True(Directory.Exists(state));

        // 2. The clustersync on PATH (a shell looks it up) works from the installed layout, not the source tree: it finds its plugins.
        var pathEnv = new Dictionary<string, string?>(env) { ["PATH"] = $"{Path.Combine(root, "usr", "bin")}:{Environment.GetEnvironmentVariable("PATH")}" };
        await using (var plugins = await CliProcess.RunProgramAsync(TimeSpan.FromSeconds(60), "clustersync plugins", "sh", ["-c", "clustersync plugins --json"], pathEnv, _dir))
        {
            Assert.True(plugins.ExitCode == 0, plugins.Output);
            using var doc = JsonDocument.Parse(plugins.Stdout);
            Assert.Contains(doc.RootElement.EnumerateArray(), p => p.GetProperty("name").GetString() == "port-protocol" && p.GetProperty("status").GetString() == "loaded");
        }

        // 3. The unit's own ExecStart, with the temporary root's paths; the installed configuration with those paths and
        //    this test's ports (and a short aloneAfter: the only member up becomes Active after it).
        var unit = File.ReadAllLines(Path.Combine(root, "usr", "lib", "systemd", "system", "clustersync.service"));
        string Rooted(string s) => s.Replace("/usr/lib/clustersync", lib, StringComparison.Ordinal)
            .Replace("/etc/clustersync", etc, StringComparison.Ordinal).Replace("/var/lib/clustersync", state, StringComparison.Ordinal);
        var execStart = Rooted(Assert.Single(unit, l => l.StartsWith("ExecStart=", StringComparison.Ordinal))["ExecStart=".Length..]).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Path.Combine(lib, "clustersync"), execStart[0]);
        string configPath = Path.Combine(etc, "node.json");
        Assert.Equal(["node", "--config", configPath], execStart[1..]);

        var installed = JsonSerializer.Deserialize<NodeConfig>(Rooted(File.ReadAllText(configPath)), NodeConfigLoader.JsonOptions)!;
        int control = Ports.FreeTcp();
        NodeConfigWriter.Write(configPath, installed with
        {
            Cluster = installed.Cluster with
            {
                AloneAfter = TimeSpan.FromSeconds(3),
                Members = installed.Cluster.Members.Select(m => m with { Address = $"127.0.0.1:{Ports.FreeUdp()}", FullSyncPort = Ports.FreeTcp() }).ToList(),
            },
            Node = installed.Node with { Control = installed.Node.Control with { Port = control } },
        });

        using var notify = new NotifySocket(Path.Combine(_dir, "notify.sock"));
        var serviceEnv = new Dictionary<string, string?>(env)
        {
            ["NOTIFY_SOCKET"] = notify.Path,
            ["WATCHDOG_USEC"] = "1000000",
            ["JOURNAL_STREAM"] = "8:4242", // stderr "is" the journal: the systemd log format
        };
        foreach (var line in unit.Where(l => l.StartsWith("Environment=", StringComparison.Ordinal)))
        {
            foreach (var pair in line["Environment=".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                serviceEnv[pair[..pair.IndexOf('=', StringComparison.Ordinal)]] = pair[(pair.IndexOf('=', StringComparison.Ordinal) + 1)..];
            }
        }

        await using var node = CliProcess.StartProgram("installed node", execStart[0], execStart[1..], serviceEnv, state);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        string endpoint = $"http://127.0.0.1:{control}";
        JsonElement status = default;
        bool ready = await Wait.UntilAsync(async () =>
        {
            Assert.False(node.HasExited, node.Tail());
            if (!notify.Received("READY=1") || !node.ControlReady(endpoint))
            {
                return false;
            }

            using var healthz = await http.GetAsync($"{endpoint}/healthz");
            status = JsonDocument.Parse(await http.GetStringAsync($"{endpoint}/status")).RootElement.Clone();
            return healthz.IsSuccessStatusCode;
        }, TimeSpan.FromSeconds(90));
        Assert.True(ready, $"no READY=1 and healthy /healthz within 90 s; notifications: {string.Join(" | ", notify.Messages)}\n{node.Tail()}");

        // READY=1 came with the member's state once it was Standby or Active (alone: no peer to join), not before.
        static bool Serving(string m) => m.Contains("STATUS=member 1: Standby", StringComparison.Ordinal) || m.Contains("STATUS=member 1: Active", StringComparison.Ordinal);
        Assert.Contains(notify.Messages, m => m.Contains("READY=1", StringComparison.Ordinal) && Serving(m));
        Assert.DoesNotContain(notify.Messages.TakeWhile(m => !m.Contains("READY=1", StringComparison.Ordinal)), Serving);
        Assert.Contains(notify.Messages, m => m.StartsWith("STATUS=member 1: Init", StringComparison.Ordinal));
        Assert.Equal("Active", status.GetProperty("membership").GetProperty("state").GetString());
        Assert.Equal("shipped", status.GetProperty("adaptive").GetProperty("modelSource").GetString());
        Assert.Equal("port-protocol", status.GetProperty("plugins").GetProperty("classifier").GetString());
        Assert.True(await Wait.UntilAsync(() => Task.FromResult(notify.Messages.Count(m => m == "WATCHDOG=1") >= 2), TimeSpan.FromSeconds(10)),
            $"WATCHDOG=1 at least twice with WATCHDOG_USEC=1000000; notifications: {string.Join(" | ", notify.Messages)}");
        Assert.Contains("<6>ClusterSync.Node.Control.ControlEndpoint[4101] Control endpoint on", node.Stderr, StringComparison.Ordinal);

        // `clustersync status` from PATH talks to it.
        await using (var statusCli = await CliProcess.RunProgramAsync(TimeSpan.FromSeconds(60), "clustersync status", "sh", ["-c", $"clustersync status --endpoint {endpoint} --json"], pathEnv, _dir))
        {
            Assert.True(statusCli.ExitCode == 0, statusCli.Output);
            Assert.Equal(1, JsonDocument.Parse(statusCli.Stdout).RootElement.GetProperty("memberId").GetInt32());
        }

        // systemctl stop: SIGTERM, exit 0, STOPPING=1.
        await node.TerminateAsync();
        Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(await Wait.UntilAsync(() => Task.FromResult(notify.Received("STOPPING=1")), TimeSpan.FromSeconds(5)), string.Join(" | ", notify.Messages));
        Assert.True(File.Exists(Path.Combine(state, "clustersync-member1.epoch")), "the epoch file is in the state directory");
    }

    [SkippableFact]
    public async Task SystemdUnit_WithItsExecStartInstalled_PassesSystemdAnalyzeVerifyWithoutWarnings()
    {
        var analyze = new[] { "/usr/bin/systemd-analyze", "/bin/systemd-analyze" }.FirstOrDefault(File.Exists);
        Skip.If(analyze is null, "systemd-analyze is not installed (Debian package systemd; .ci/run installs it)");

        // The unit as shipped, its ExecStart pointing at an executable that exists here (verify checks it).
        string program = Path.Combine(_dir, "clustersync");
        File.WriteAllText(program, "#!/bin/sh\nexit 0\n");
        File.SetUnixFileMode(program, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string unit = Path.Combine(_dir, "clustersync.service");
        File.WriteAllText(unit, File.ReadAllText(Path.Combine(CliProcess.RepositoryRoot(), "packaging", "clustersync.service"))
            .Replace("/usr/lib/clustersync/clustersync ", program + " ", StringComparison.Ordinal));

        await using var verify = await CliProcess.RunProgramAsync(TimeSpan.FromSeconds(60), "systemd-analyze verify", analyze!, ["verify", unit]);

        // verify exits 0 even for unknown keys or bad values: it must also print nothing about the unit.
        Assert.True(verify.ExitCode == 0, verify.Output);
        Assert.DoesNotContain("clustersync.service", verify.Output, StringComparison.Ordinal);
    }

    /// <summary>A stand-in for systemd's notify socket: a Unix datagram socket that keeps every message it receives.</summary>
    private sealed class NotifySocket : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        private readonly List<string> _messages = [];
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _receiving;

        public NotifySocket(string path)
        {
            Path = path;
            _socket.Bind(new UnixDomainSocketEndPoint(path));
            _receiving = Task.Run(ReceiveAsync);
        }

        public string Path { get; }

        public IReadOnlyList<string> Messages
        {
            get
            {
                lock (_messages)
                {
                    return [.. _messages];
                }
            }
        }

        public bool Received(string assignment) => Messages.Any(m => m.Split('\n').Contains(assignment, StringComparer.Ordinal));

        private async Task ReceiveAsync()
        {
            var buffer = new byte[4096];
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    int n = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                    lock (_messages)
                    {
                        _messages.Add(Encoding.UTF8.GetString(buffer, 0, n));
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _socket.Dispose();
            _receiving.Wait(TimeSpan.FromSeconds(5));
            _stop.Dispose();
        }
    }
}
