using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ClusterSync.EndToEndTests.Netns;

/// <summary>
/// The host side of the end-to-end tests: running <c>ip</c>, <c>nft</c>, <c>conntrack</c> (in a namespace through
/// <c>ip netns exec</c>), sockets created inside a namespace, and why the tests cannot run here.
/// </summary>
internal static partial class Host
{
    private const int CloneNewNet = 0x40000000;
    private static readonly Lazy<string?> s_skipReason = new(Probe);

    /// <summary>Why namespaces with nftables and conntrack cannot be built here (null when they can).</summary>
    public static string? SkipReason => s_skipReason.Value;

    /// <summary>Runs a command to completion (10 s at most); its exit code and stdout+stderr.</summary>
    public static async Task<(int Code, string Output)> RunAsync(string file, IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
        }

        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        try
        {
            await p.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            return (-1, $"{file} {string.Join(' ', args)}: did not finish within {(timeout ?? TimeSpan.FromSeconds(10)).TotalSeconds:F0} s");
        }

        return (p.ExitCode, await stdout + await stderr);
    }

    /// <summary>Runs a command and fails the test (with the command and its output) unless it exits 0; returns stdout+stderr.</summary>
    public static async Task<string> MustAsync(string file, params string[] args)
    {
        var (code, output) = await RunAsync(file, args);
        Assert.True(code == 0, $"{file} {string.Join(' ', args)} exited {code}: {output}");
        return output;
    }

    /// <summary><c>ip netns exec NS file args...</c>, which must exit 0.</summary>
    public static Task<string> InAsync(string ns, string file, params string[] args) => MustAsync("ip", ["netns", "exec", ns, file, .. args]);

    /// <summary>Loads an nftables ruleset inside namespace <paramref name="ns"/> (<c>nft -f -</c>); fails the test if refused.</summary>
    public static async Task NftAsync(string ns, string ruleset)
    {
        var (code, output) = await RunAsync("ip", ["netns", "exec", ns, "nft", "-f", "-"], ruleset);
        Assert.True(code == 0, $"nft in {ns} refused:\n{ruleset}\n{output}");
    }

    /// <summary>
    /// A TCP socket that belongs to network namespace <paramref name="ns"/>: created on a short-lived thread of its own
    /// that enters the namespace (<c>setns</c> affects only the calling thread) and leaves it again. The socket stays
    /// in that namespace whichever thread uses it, so the test talks to a node's 127.0.0.1 control endpoint inside
    /// its namespace without a helper process.
    /// </summary>
    public static Socket TcpSocketIn(string ns)
    {
        Socket? socket = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var self = File.OpenHandle("/proc/thread-self/ns/net");
                using var target = File.OpenHandle($"/var/run/netns/{ns}");
                if (SetNs(target, CloneNewNet) != 0)
                {
                    error = new IOException($"setns into {ns} failed: errno {Marshal.GetLastPInvokeError()}");
                    return;
                }

                try
                {
                    socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                }
                finally
                {
                    if (SetNs(self, CloneNewNet) != 0)
                    {
                        // The thread ends right here; nothing else ever runs on it.
                        error ??= new IOException($"setns back from {ns} failed: errno {Marshal.GetLastPInvokeError()}");
                    }
                }
            }
            catch (Exception ex)
            {
                error = ex;
            }
        })
        {
            IsBackground = true,
            Name = $"netns socket {ns}",
        };
        thread.Start();
        thread.Join();
        if (error is not null)
        {
            socket?.Dispose();
            throw error;
        }

        return socket!;
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(SafeFileHandle fd, int nstype);

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "needs Linux network namespaces";
        }

        if (!Environment.IsPrivilegedProcess)
        {
            return "needs root to create network namespaces, veth links and nftables rules (CI runs as root)";
        }

        foreach (var (tool, package) in new[] { ("ip", "iproute2"), ("nft", "nftables"), ("conntrack", "conntrack") })
        {
            if (!OnPath(tool))
            {
                return $"the {tool} command is missing (apt-get install {package})";
            }
        }

        string ns = $"cse2e-probe-{Environment.ProcessId}";
        try
        {
            var (code, output) = RunAsync("ip", ["netns", "add", ns]).GetAwaiter().GetResult();
            if (code != 0)
            {
                return $"ip netns add refused: {output.Trim()}";
            }

            (code, output) = RunAsync("ip", ["netns", "exec", ns, "nft", "-f", "-"], "table inet probe {\n chain f {\n  type filter hook forward priority 0;\n  ct state established accept\n }\n}\n").GetAwaiter().GetResult();
            return code == 0 ? null : $"nftables with conntrack refused inside a namespace: {output.Trim()}";
        }
        finally
        {
            RunAsync("ip", ["netns", "del", ns]).GetAwaiter().GetResult();
        }
    }

    public static bool OnPath(string tool)
        => (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':')
            .Concat(["/usr/sbin", "/sbin"]).Any(d => d.Length > 0 && File.Exists(Path.Combine(d, tool)));
}
