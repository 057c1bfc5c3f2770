using System.Globalization;
using System.Text;

namespace ClusterSync.TestUtilities;

/// <summary>
/// The built <c>clustersync.dll</c> run as a separate OS process (<c>dotnet clustersync.dll ARGS</c>): stdout and
/// stderr collected (<see cref="Output"/>, <see cref="Stdout"/>), <see cref="DisposeAsync"/> kills the process tree if
/// it still runs. <paramref name="wrapper"/> runs it under another program (for example <c>ip netns exec NS</c>).
/// </summary>
public sealed class CliProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _openStreams = 2;
    private string? _final; // the state once disposed (the Process object no longer answers)

    private CliProcess(Process process, string name)
    {
        _process = process;
        Name = name;
    }

    /// <summary>What the process is, for logs (<c>member 2</c>, <c>keygen</c>, ...).</summary>
    public string Name { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Everything the process wrote, stdout and stderr interleaved as they arrived.</summary>
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

    /// <summary>Standard output only (a command's JSON document, without log lines on stderr).</summary>
    public string Stdout
    {
        get
        {
            lock (_output)
            {
                return _stdout.ToString();
            }
        }
    }

    /// <summary>Standard error only (a command's error messages and a node's log lines).</summary>
    public string Stderr
    {
        get
        {
            lock (_output)
            {
                return _stderr.ToString();
            }
        }
    }

    public bool HasLogged(string text) => Output.Contains(text, StringComparison.Ordinal);

    /// <summary>
    /// True once the node has logged that its control endpoint listens at <paramref name="endpoint"/>. Poll only after
    /// that: the managed HttpListener on Unix can fail its own Start() (ArgumentNullException in HttpEndPointListener)
    /// when a client connects while it is starting, which a 20 ms poller makes likely.
    /// </summary>
    public bool ControlReady(string endpoint) => HasLogged($"Control endpoint on {endpoint}/");

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

    /// <summary>Starts <c>clustersync ARGS</c>.</summary>
    public static CliProcess Start(params string[] args) => Start($"clustersync {args.FirstOrDefault()}", [], args);

    /// <summary>Starts <c>WRAPPER... dotnet clustersync.dll ARGS</c> (an empty <paramref name="wrapper"/>: directly), named <paramref name="name"/> in logs.</summary>
    public static CliProcess Start(string name, IReadOnlyList<string> wrapper, params string[] args)
    {
        var info = new ProcessStartInfo(wrapper.Count > 0 ? wrapper[0] : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in wrapper.Skip(1).Concat(wrapper.Count > 0 ? ["dotnet"] : []).Append(CliDll()).Concat(args))
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["DOTNET_NOLOGO"] = "1";
        var p = new CliProcess(new Process { StartInfo = info }, name);
        p._process.OutputDataReceived += (_, e) => p.Append(e.Data, stdout: true);
        p._process.ErrorDataReceived += (_, e) => p.Append(e.Data, stdout: false);
        p._process.Start();
        p._process.BeginOutputReadLine();
        p._process.BeginErrorReadLine();
        return p;
    }

    /// <summary>
    /// Starts another program (an installed <c>clustersync</c>, a script) the same way: output collected, the process
    /// tree killed on dispose. <paramref name="environment"/> adds to (or, with a null value, removes from) the test's environment.
    /// </summary>
    public static CliProcess StartProgram(string name, string fileName, IReadOnlyList<string> args,
        IReadOnlyDictionary<string, string?>? environment = null, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                info.Environment.Remove(key);
            }
            else
            {
                info.Environment[key] = value;
            }
        }

        var p = new CliProcess(new Process { StartInfo = info }, name);
        p._process.OutputDataReceived += (_, e) => p.Append(e.Data, stdout: true);
        p._process.ErrorDataReceived += (_, e) => p.Append(e.Data, stdout: false);
        p._process.Start();
        p._process.BeginOutputReadLine();
        p._process.BeginErrorReadLine();
        return p;
    }

    /// <summary>Runs another program to completion (<see cref="StartProgram"/>); fails the test with its output after <paramref name="timeout"/>.</summary>
    public static async Task<CliProcess> RunProgramAsync(TimeSpan timeout, string name, string fileName, IReadOnlyList<string> args,
        IReadOnlyDictionary<string, string?>? environment = null, string? workingDirectory = null)
    {
        var p = StartProgram(name, fileName, args, environment, workingDirectory);
        try
        {
            await p.WaitForExitAsync(timeout).ConfigureAwait(false);
            return p;
        }
        catch
        {
            await p.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Runs <c>clustersync ARGS</c> to completion; fails the test (with its output) if it takes longer than <paramref name="timeout"/>.</summary>
    public static async Task<CliProcess> RunAsync(TimeSpan timeout, params string[] args)
    {
        var p = Start(args);
        try
        {
            await p.WaitForExitAsync(timeout).ConfigureAwait(false);
            return p;
        }
        catch
        {
            await p.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Waits for the process to exit and its output to be read; fails the test with its output after <paramref name="timeout"/>.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            await _drained.Task.WaitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"{Name} did not exit within {timeout.TotalSeconds:0.#} s:\n{Output}");
        }

        return _process.ExitCode;
    }

    /// <summary>True once the test killed or terminated the process on purpose (its exit is then no failure).</summary>
    public bool Stopped { get; private set; }

    /// <summary>
    /// Kills the process at once (SIGKILL on Linux): no shutdown, no last heartbeat, as a crash or power loss. Returns
    /// once it has exited.
    /// </summary>
    public void Kill()
    {
        Stopped = true;
        _process.Kill();
        _process.WaitForExit(TimeSpan.FromSeconds(10));
    }

    /// <summary>Asks the process to stop as a service manager would (SIGTERM).</summary>
    public async Task TerminateAsync()
    {
        Stopped = true;
        using var kill = Process.Start("kill", ["-TERM", Id.ToString(CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Asserts the command ended as bad input does: exit 2, its output naming every one of <paramref name="expected"/>
    /// (the file, the field or option, what was expected), and a message rather than a stack trace.
    /// </summary>
    public void AssertExit2(params string[] expected)
    {
        var output = Output;
        Assert.True(ExitCode == 2, $"exit {ExitCode}:\n{output}");
        foreach (var e in expected)
        {
            Assert.Contains(e, output, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    /// <summary>The last <paramref name="chars"/> characters of the output, headed by the name and the exit code if it exited.</summary>
    public string Tail(int chars = 8000)
    {
        var output = Output;
        var state = _final ?? (_process.HasExited ? $"exited {_process.ExitCode}" : "running");
        return $"== {Name} ({state}) ==\n{(output.Length <= chars ? output : "..." + output[^chars..])}";
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException)
        {
        }
        finally
        {
            _final ??= _process.HasExited ? $"exited {_process.ExitCode}" : "running";
            _process.Dispose();
        }
    }

    private void Append(string? line, bool stdout)
    {
        if (line is null)
        {
            if (Interlocked.Decrement(ref _openStreams) == 0)
            {
                _drained.TrySetResult();
            }

            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
            (stdout ? _stdout : _stderr).AppendLine(line);
        }
    }
}
