using System.Diagnostics;
using System.Text.RegularExpressions;

namespace ClusterSync.IntegrationTests.Transport;

/// <summary>
/// A real <c>nats-server</c> (Debian package <c>nats-server</c>) started by the test on 127.0.0.1 with a port the server
/// picks itself (<c>-p -1</c>, read back from its log, so two test classes never race for one) and a temporary directory;
/// stopped (killed) on dispose. When the binary is missing, <see cref="Url"/> is null and <see cref="SkipReason"/> says why.
/// </summary>
public sealed partial class NatsServerFixture : IDisposable
{
    private static readonly string[] s_candidates = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"];
    private readonly Process? _process;
    private readonly string? _directory;
    private readonly List<string> _log = [];

    public NatsServerFixture()
    {
        string? binary = Environment.GetEnvironmentVariable("NATS_SERVER") is { Length: > 0 } env ? env
            : s_candidates.FirstOrDefault(File.Exists)
              ?? (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "nats-server")).FirstOrDefault(File.Exists);
        if (binary is null || !File.Exists(binary))
        {
            SkipReason = "nats-server is not installed (Debian: apt-get install -y nats-server; .ci/run installs it)";
            return;
        }

        _directory = Directory.CreateTempSubdirectory("clustersync-nats-").FullName;
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var psi = new ProcessStartInfo(binary)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
            WorkingDirectory = _directory,
        };
        // -p -1: the server picks a free port and logs it; no monitoring port, no JetStream (nothing written to disk).
        foreach (var arg in new[] { "-a", "127.0.0.1", "-p", "-1", "-n", "clustersync-test" })
        {
            psi.ArgumentList.Add(arg);
        }

        _process = new Process { StartInfo = psi, EnableRaisingEvents = true };
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
        _process.ErrorDataReceived += onLine;
        _process.OutputDataReceived += onLine;
        _process.Start();
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        if (!listening.Task.Wait(TimeSpan.FromSeconds(15)))
        {
            Dispose();
            throw new InvalidOperationException("nats-server did not report listening within 15 s: " + Log);
        }

        Url = "nats://" + listening.Task.Result;
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

    /// <summary>Stops the server with SIGKILL (as a crashed NATS node would go) and waits for it.</summary>
    public void Dispose()
    {
        if (_process is not null)
        {
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
        }

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
