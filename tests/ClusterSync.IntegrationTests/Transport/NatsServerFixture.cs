namespace ClusterSync.IntegrationTests.Transport;

/// <summary>
/// A real <c>nats-server</c> (Debian package <c>nats-server</c>) started by the test on 127.0.0.1 with a port the server
/// picks itself (<c>-p -1</c>, read back from its log, so two test classes never race for one) in a temporary directory;
/// stopped (killed) on dispose. When the binary is missing, <see cref="Url"/> is null and <see cref="SkipReason"/> says why.
/// </summary>
public sealed partial class NatsServerFixture : IDisposable
{
    private static readonly string[] s_candidates = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"];
    private readonly string? _binary;
    private readonly string? _directory;
    private readonly List<string> _log = [];
    private Process? _process;

    public NatsServerFixture()
    {
        _binary = Environment.GetEnvironmentVariable("NATS_SERVER") is { Length: > 0 } env ? env
            : s_candidates.FirstOrDefault(File.Exists)
              ?? (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "nats-server")).FirstOrDefault(File.Exists);
        if (_binary is null || !File.Exists(_binary))
        {
            SkipReason = "nats-server is not installed (Debian: apt-get install -y nats-server; .ci/run installs it)";
            return;
        }

        _directory = Directory.CreateTempSubdirectory("clustersync-nats-").FullName;
        // -p -1: the server picks a free port and logs it; no monitoring port, no JetStream (nothing written to disk).
        Url = "nats://" + Start("-1");
    }

    /// <summary>The client URL (<c>nats://127.0.0.1:port</c>), or null when no server could be started.</summary>
    public string? Url { get; }

    public string? SkipReason { get; }

    public string Log
    {
        get
        {
            lock (_log)
            {
                return string.Join(Environment.NewLine, _log);
            }
        }
    }

    /// <summary>Kills the server (SIGKILL, as a crashed NATS node) and waits until it is gone.</summary>
    public void Kill()
    {
        if (_process is null)
        {
            return;
        }

        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
        _process = null;
    }

    /// <summary>Starts the server again on the port it had (after <see cref="Kill"/>).</summary>
    public void Restart()
    {
        Kill();
        Start(new Uri(Url!).Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private string Start(string port)
    {
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var psi = new ProcessStartInfo(_binary!)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
            WorkingDirectory = _directory,
        };
        foreach (var arg in new[] { "-a", "127.0.0.1", "-p", port, "-n", "clustersync-test" })
        {
            psi.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        DataReceivedEventHandler onLine = (_, e) =>
        {
            if (e.Data is null)
            {
                listening.TrySetException(new InvalidOperationException("nats-server exited: " + Log));
                return;
            }

            lock (_log)
            {
                _log.Add(e.Data);
            }

            var m = ListeningLine().Match(e.Data);
            if (m.Success)
            {
                listening.TrySetResult(m.Groups[1].Value);
            }
        };
        process.ErrorDataReceived += onLine;
        process.OutputDataReceived += onLine;
        process.Start();
        _process = process;
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        bool started;
        try
        {
            started = listening.Task.Wait(TimeSpan.FromSeconds(15));
        }
        catch (AggregateException)
        {
            started = false;
        }

        if (!started)
        {
            Kill();
            throw new InvalidOperationException("nats-server did not report listening within 15 s: " + Log);
        }

        return listening.Task.Result;
    }

    public void Dispose()
    {
        Kill();
        if (_directory is not null)
        {
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    [GeneratedRegex(@"Listening for client connections on ([0-9.]+:\d+)")]
    private static partial Regex ListeningLine();
}
