using System.Diagnostics;
using System.Text;

namespace ClusterSync.Cli.Demo;

/// <summary>How to start another <c>clustersync</c>: the apphost itself, or <c>dotnet clustersync.dll</c>.</summary>
internal sealed record CliLauncher(string FileName, IReadOnlyList<string> PrefixArguments)
{
    /// <summary>The running <c>clustersync</c>, however it was started (apphost, <c>dotnet clustersync.dll</c>, <c>dotnet run</c>).</summary>
    public static CliLauncher Current()
    {
        var process = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this process is unknown");
        return Path.GetFileNameWithoutExtension(process).Equals("dotnet", StringComparison.OrdinalIgnoreCase)
            ? new CliLauncher(process, [typeof(CliLauncher).Assembly.Location])
            : new CliLauncher(process, []);
    }
}

/// <summary>A child <c>clustersync</c> process; output collected; <see cref="Dispose"/> kills it if it still runs.</summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ChildProcess(Process process) => _process = process;

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

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

    public static ChildProcess Start(CliLauncher launcher, params string[] args)
    {
        var info = new ProcessStartInfo(launcher.FileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in launcher.PrefixArguments.Concat(args))
        {
            info.ArgumentList.Add(a);
        }

        // The children log to our pipes; keep their console quiet and plain.
        info.Environment["DOTNET_NOLOGO"] = "1";
        var child = new ChildProcess(new Process { StartInfo = info });
        child._process.OutputDataReceived += (_, e) => child.Append(e.Data);
        child._process.ErrorDataReceived += (_, e) => child.Append(e.Data);
        child._process.Start();
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        return child;
    }

    public bool HasLogged(string text) => Output.Contains(text, StringComparison.Ordinal);

    /// <summary>SIGKILL: no shutdown, no last heartbeat (a crash or power loss).</summary>
    public void Kill()
    {
        try
        {
            _process.Kill();
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    public void Dispose()
    {
        KeepOutputIfAsked();
        try
        {
            if (!_process.HasExited)
            {
                Kill();
                _process.WaitForExit(5000);
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
    /// With <c>CLUSTERSYNC_KEEP_CHILD_OUTPUT=DIR</c> (a diagnosis aid for the demo and the benchmarks, which delete their
    /// temporary directory): the child's output is written to <c>DIR/child-PID.log</c> when it is disposed.
    /// </summary>
    private void KeepOutputIfAsked()
    {
        string? dir = Environment.GetEnvironmentVariable("CLUSTERSYNC_KEEP_CHILD_OUTPUT");
        if (string.IsNullOrEmpty(dir))
        {
            return;
        }

        try
        {
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, $"child-{_process.Id}.log"), Output);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            // A diagnosis aid only: never fails the run.
        }
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
