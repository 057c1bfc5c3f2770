using System.Diagnostics;
using System.Globalization;

namespace ClusterSync.Cli.Bench;

/// <summary>What the benchmarks read from and run on the host: the load average printed beside every number, and the
/// kernel tools (<c>ip</c>, <c>conntrack</c>, <c>modprobe</c>) the kernel benchmarks call.</summary>
internal static class BenchHost
{
    /// <summary>The 1-minute load average (Linux; -1 elsewhere): every number of a shared machine is read beside it.</summary>
    public static double LoadAverage()
    {
        try
        {
            return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or FormatException or UnauthorizedAccessException)
        {
            return -1;
        }
    }

    /// <summary>Runs a tool to its end and returns its exit code and output (stdout then stderr); -1 when it cannot start.</summary>
    public static (int Code, string Output) Run(params string[] args) => RunWithin(Timeout.Infinite, args);

    /// <summary>As <see cref="Run"/>, killing the tool after <paramref name="timeoutMs"/> (exit code -1 and a message).</summary>
    public static (int Code, string Output) RunWithin(int timeoutMs, params string[] args)
    {
        var info = new ProcessStartInfo(args[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args.Skip(1))
        {
            info.ArgumentList.Add(a);
        }

        try
        {
            using var p = Process.Start(info)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeoutMs))
            {
                p.Kill();
                return (-1, $"'{string.Join(' ', args)}' did not finish within {timeoutMs / 1000} s");
            }

            p.WaitForExit(); // the output streams to their end
            return (p.ExitCode, stdout.Result + stderr.Result);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return (-1, $"{args[0]}: {ex.Message}");
        }
    }
}
