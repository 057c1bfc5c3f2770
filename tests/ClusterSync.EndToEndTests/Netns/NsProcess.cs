using System.Text;

namespace ClusterSync.EndToEndTests.Netns;

/// <summary>
/// A process inside a network namespace (<c>ip netns exec NS file args...</c>; <c>ip</c> execs the program, so the
/// process id is the program's). Every output line goes to <see cref="LineReceived"/> and into a bounded log; its
/// standard input stays open (the traffic helper exits when it closes, i.e. when the test process is gone).
/// Disposing kills the process tree.
/// </summary>
internal sealed class NsProcess : IAsyncDisposable
{
    private const int MaxLog = 64 * 1024;
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private int _disposed;

    private NsProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public string Name { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public event Action<string>? LineReceived;

    /// <summary>The last 64 KiB of output.</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public static NsProcess Start(string name, string ns, string file, IEnumerable<string> args, Action<string>? onLine = null)
    {
        var info = new ProcessStartInfo("ip")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in (string[])["netns", "exec", ns, file, .. args])
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        var process = new Process { StartInfo = info };
        var p = new NsProcess(name, process);
        if (onLine is not null)
        {
            p.LineReceived += onLine;
        }

        process.OutputDataReceived += (_, e) => p.Append(e.Data);
        process.ErrorDataReceived += (_, e) => p.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return p;
    }

    /// <summary>SIGKILL: no shutdown, no last heartbeat (a crash or power loss).</summary>
    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception or ObjectDisposedException)
        {
        }
    }

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(limit.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
    }

    /// <summary>Kills the process tree and waits for it (10 s at most); idempotent (both the pair and its owner may dispose it).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Kill();
        await WaitForExitAsync(TimeSpan.FromSeconds(10));
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        if (!line.StartsWith("P ", StringComparison.Ordinal))
        {
            lock (_log)
            {
                if (_log.Length > MaxLog)
                {
                    _log.Remove(0, _log.Length - (MaxLog / 2));
                }

                _log.AppendLine(line);
            }
        }

        LineReceived?.Invoke(line);
    }
}
