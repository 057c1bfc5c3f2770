using System.Diagnostics;

namespace ClusterSync.Plugins.Conntrack.Tests.Kernel;

/// <summary>
/// A network namespace of the test's own (<c>ip netns add cs-ct-&lt;pid&gt;-&lt;n&gt;</c>): loopback up, conntrack
/// timestamps on, and an nftables ruleset that uses <c>ct state</c> (without one the kernel tracks nothing in a fresh
/// namespace). <see cref="Run{T}"/> runs code on a thread that entered the namespace (setns is per thread), so netlink and
/// IP sockets created there belong to it. <see cref="Dispose"/> deletes the namespace, also when the test failed.
/// </summary>
internal sealed partial class Netns : IDisposable
{
    private const int CloneNewNet = 0x40000000;
    private static int s_counter;

    private Netns(string name) => Name = name;

    public string Name { get; }

    public static Netns Create()
    {
        var ns = new Netns($"cs-ct-{Environment.ProcessId}-{Interlocked.Increment(ref s_counter)}");
        try
        {
            Sh(["ip", "netns", "add", ns.Name]);
            ns.Exec("ip", "link", "set", "lo", "up");
            ns.Exec("sysctl", "-qw", "net.netfilter.nf_conntrack_timestamp=1");
            ns.Nft("""
                table inet clustersync_test {
                  chain out { type filter hook output priority 0; policy accept; ct state new,established,related,invalid accept; }
                }
                """);
            return ns;
        }
        catch
        {
            ns.Dispose();
            throw;
        }
    }

    /// <summary>Why namespace tests cannot run here (null when they can): not root, or ip/nft/conntrack missing.</summary>
    public static string? SkipReason => s_skip.Value;

    private static readonly Lazy<string?> s_skip = new(() =>
    {
        if (!OperatingSystem.IsLinux())
        {
            return "needs Linux (network namespaces, netfilter conntrack)";
        }

        if (Environment.UserName != "root" && GetEuid() != 0)
        {
            return "needs root (creates network namespaces and uses CAP_NET_ADMIN): run the tests as root, as CI does";
        }

        foreach (var tool in new[] { "ip", "nft", "conntrack" })
        {
            if (!new[] { "/usr/sbin", "/sbin", "/usr/bin", "/bin" }.Any(d => File.Exists(Path.Combine(d, tool))))
            {
                return $"needs the '{tool}' command (Debian packages iproute2, nftables, conntrack)";
            }
        }

        return null;
    });

    public string Exec(params string[] args) => Sh(["ip", "netns", "exec", Name, .. args]);

    public (int Code, string Output) TryExec(params string[] args) => Run(["ip", "netns", "exec", Name, .. args]);

    public void Nft(string ruleset) => Sh(["ip", "netns", "exec", Name, "nft", "-f", "-"], ruleset);

    /// <summary>The namespace's conntrack table as <c>conntrack -L</c> prints it (one line per entry).</summary>
    public string[] ConntrackList(params string[] filter)
        => [.. Exec(["conntrack", "-L", .. filter]).Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("conntrack v", StringComparison.Ordinal))];

    /// <summary>Runs <paramref name="action"/> on a thread inside the namespace.</summary>
    public T Run<T>(Func<T> action)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var fd = File.OpenHandle($"/var/run/netns/{Name}");
                if (SetNs((int)fd.DangerousGetHandle(), CloneNewNet) != 0)
                {
                    throw new InvalidOperationException($"setns into {Name} failed: errno {Marshal.GetLastPInvokeError()}");
                }

                result = action();
            }
            catch (Exception ex)
            {
                error = ex;
            }
        });
        thread.Start();
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)), "the namespace thread did not finish within 30 s");
        if (error is not null)
        {
            throw new AggregateException(error);
        }

        return result;
    }

    public void Dispose()
    {
        var (code, output) = Run(["ip", "netns", "del", Name]);
        if (code != 0 && File.Exists($"/var/run/netns/{Name}"))
        {
            throw new InvalidOperationException($"ip netns del {Name} failed: {output}");
        }
    }

    private static string Sh(string[] args, string? input = null)
    {
        var (code, output) = Run(args, input);
        return code == 0 ? output : throw new InvalidOperationException($"'{string.Join(' ', args)}' exited {code}: {output}");
    }

    private static (int Code, string Output) Run(string[] args, string? input = null)
    {
        var info = new ProcessStartInfo(args[0]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = input is not null, UseShellExecute = false };
        foreach (var a in args.Skip(1))
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        if (input is not null)
        {
            p.StandardInput.Write(input);
            p.StandardInput.Close();
        }

        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(30_000))
        {
            p.Kill();
            return (-1, $"'{string.Join(' ', args)}' did not finish within 30 s");
        }

        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nstype);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();
}

/// <summary>A fact that needs root and a kernel with conntrack; skipped with the reason otherwise (<see cref="Netns.SkipReason"/>).</summary>
internal sealed class NetnsFactAttribute : FactAttribute
{
    public NetnsFactAttribute()
    {
        if (Netns.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>Collects what a source submits; can hold the source inside Submit (to overrun its socket) until released.</summary>
internal sealed class RecordingSink : DataPlane.IConnectionEventSink
{
    private readonly object _sync = new();
    private readonly List<Connections.ConnectionEvent> _events = [];
    private readonly ManualResetEventSlim _open = new(true);
    private Predicate<Connections.ConnectionEvent>? _holdWhen;
    private int _held;

    public int PendingCount => 0;

    public bool IsHolding => Volatile.Read(ref _held) == 1;

    public void Submit(ReadOnlySpan<Connections.ConnectionEvent> changes)
    {
        lock (_sync)
        {
            _events.AddRange(changes);
            if (_holdWhen is { } when)
            {
                foreach (var c in changes)
                {
                    if (when(c))
                    {
                        _holdWhen = null;
                        _open.Reset();
                        break;
                    }
                }
            }
        }

        if (!_open.IsSet)
        {
            Volatile.Write(ref _held, 1);
            _open.Wait(TimeSpan.FromSeconds(30));
            Volatile.Write(ref _held, 0);
        }
    }

    /// <summary>The next Submit blocks until <see cref="Release"/>.</summary>
    public void Hold() => _open.Reset();

    public void Release() => _open.Set();

    /// <summary>The first Submit with an event matching <paramref name="when"/> blocks until <see cref="Release"/>.</summary>
    public void HoldWhen(Predicate<Connections.ConnectionEvent> when)
    {
        lock (_sync)
        {
            _holdWhen = when;
        }
    }

    /// <summary>The connections announced and not destroyed since, replaying the submitted events in order.</summary>
    public HashSet<Connections.ConnectionKey> Live()
    {
        var live = new HashSet<Connections.ConnectionKey>();
        foreach (var e in Events)
        {
            if (e.Kind == Connections.ConnectionEventKind.Destroy)
            {
                live.Remove(e.Key);
            }
            else
            {
                live.Add(e.Key);
            }
        }

        return live;
    }

    public List<Connections.ConnectionEvent> Events
    {
        get
        {
            lock (_sync)
            {
                return [.. _events];
            }
        }
    }
}

/// <summary>
/// A source running into a <see cref="RecordingSink"/> for the length of a test: disposing it releases the recorder,
/// stops and disposes the source and waits (at most 15 s) for its run to end.
/// </summary>
internal sealed class RunningSource : IAsyncDisposable
{
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(15);
    private readonly DataPlane.IConnectionSource _source;
    private readonly RecordingSink _recorder;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    private RunningSource(DataPlane.IConnectionSource source, RecordingSink recorder)
    {
        _source = source;
        _recorder = recorder;
        _run = source.RunAsync(recorder, _stop.Token);
    }

    public static RunningSource Start(DataPlane.IConnectionSource source, RecordingSink recorder) => new(source, recorder);

    public async ValueTask DisposeAsync()
    {
        _recorder.Release();
        await _stop.CancelAsync();
        await _source.DisposeAsync();
        await Task.WhenAny(_run, Task.Delay(StopTimeout));
        _stop.Dispose();
    }
}

internal static class Wait
{
    /// <summary>Polls <paramref name="condition"/> until true or <paramref name="timeout"/> (then false); no fixed sleeps.</summary>
    public static bool Until(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        using var tick = new ManualResetEventSlim(false);
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                return condition();
            }

            tick.Wait(10);
        }

        return true;
    }
}
