using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ClusterSync.EndToEndTests.Traffic;

/// <summary>
/// The end-to-end workload, run inside a network namespace:
/// <code>
/// cse2e-traffic echo --port P
/// cse2e-traffic clients --server IP:PORT --long N [--interval-ms M] [--short-rate R] [--short-count C] [--report-ms T]
/// </code>
/// <c>echo</c> echoes every byte on every accepted TCP connection and prints <c>LISTENING port</c>.
/// <c>clients</c> opens N long-lived connections, each sending 32 bytes and awaiting their echo every M ms, plus a
/// stream of R short connections per second (connect, 16 bytes echoed, close), and prints, one line each:
/// <list type="bullet">
/// <item><c>LONG i localIp:localPort</c> once long connection i is connected and its first echo came back;</item>
/// <item><c>ESTABLISHED n</c> once all of them are (or <c>FAILED n reason</c> when one could not be);</item>
/// <item><c>P unixMs shortOk shortFail c0 c1 ... cN-1</c> every T ms: round trips completed per long connection;</item>
/// <item><c>DEAD i reason</c> when long connection i is reset or closed (its count stops).</item>
/// </list>
/// Both modes exit when their standard input closes (the test that started them is gone) or on SIGTERM; with
/// <c>--stdin ignore</c> (a script running them in the background) only on SIGTERM.
/// </summary>
internal static class Program
{
    private static readonly object s_out = new();

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0)
        {
            return Usage("a mode: echo or clients");
        }

        var options = ParseOptions(args.AsSpan(1));
        if (options is null)
        {
            return Usage("options as --name value pairs");
        }

        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });
        if (!(options.TryGetValue("stdin", out var stdinMode) && stdinMode == "ignore"))
        {
            _ = Task.Run(() => WatchStdin(stop));
        }

        try
        {
            return args[0] switch
            {
                "echo" => await EchoAsync(options, stop.Token),
                "clients" => await ClientsAsync(options, stop.Token),
                _ => Usage($"an unknown mode '{args[0]}'"),
            };
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return 0;
        }
        catch (FormatException ex)
        {
            return Usage(ex.Message);
        }
    }

    private static int Usage(string what)
    {
        Console.Error.WriteLine($"cse2e-traffic: expected {what}");
        Console.Error.WriteLine("usage: cse2e-traffic echo --port P | clients --server IP:PORT --long N [--interval-ms M] [--short-rate R] [--short-count C] [--report-ms T]  [--stdin ignore]");
        return 2;
    }

    private static Dictionary<string, string>? ParseOptions(ReadOnlySpan<string> args)
    {
        if (args.Length % 2 != 0)
        {
            return null;
        }

        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
            {
                return null;
            }

            d[args[i][2..]] = args[i + 1];
        }

        return d;
    }

    private static int Int(Dictionary<string, string> o, string name, int fallback)
        => o.TryGetValue(name, out var v)
            ? int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) && n >= 0 ? n : throw new FormatException($"--{name} as a non-negative integer, not '{v}'")
            : fallback;

    private static void WatchStdin(CancellationTokenSource stop)
    {
        try
        {
            using var stdin = Console.OpenStandardInput();
            var buffer = new byte[64];
            while (stdin.Read(buffer) > 0)
            {
            }
        }
        catch (IOException)
        {
        }

        stop.Cancel();
    }

    private static void Line(string line)
    {
        lock (s_out)
        {
            Console.Out.WriteLine(line);
            Console.Out.Flush();
        }
    }

    private static async Task<int> EchoAsync(Dictionary<string, string> o, CancellationToken ct)
    {
        int port = Int(o, "port", 7000);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Bind(new IPEndPoint(IPAddress.Any, port));
        listener.Listen(4096);
        Line(string.Create(CultureInfo.InvariantCulture, $"LISTENING {port}"));
        while (!ct.IsCancellationRequested)
        {
            var s = await listener.AcceptAsync(ct);
            _ = Task.Run(() => EchoOneAsync(s, ct), ct);
        }

        return 0;
    }

    private static async Task EchoOneAsync(Socket s, CancellationToken ct)
    {
        using (s)
        {
            s.NoDelay = true;
            var buffer = new byte[4096];
            try
            {
                while (true)
                {
                    int n = await s.ReceiveAsync(buffer, SocketFlags.None, ct);
                    if (n == 0)
                    {
                        return;
                    }

                    await s.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, ct);
                }
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
            {
            }
        }
    }

    private static async Task<int> ClientsAsync(Dictionary<string, string> o, CancellationToken ct)
    {
        if (!o.TryGetValue("server", out var serverText) || !IPEndPoint.TryParse(serverText, out var server))
        {
            throw new FormatException("--server IP:PORT");
        }

        int longCount = Int(o, "long", 200);
        int intervalMs = Int(o, "interval-ms", 50);
        int shortRate = Int(o, "short-rate", 0);
        int shortCount = Int(o, "short-count", 0);
        int reportMs = Math.Max(10, Int(o, "report-ms", 100));
        var counts = new long[longCount];
        var shortOk = new long[1];
        var shortFail = new long[1];

        // Connect one after another (a SYN burst of hundreds could overflow the server's accept queue), then run all.
        var sockets = new Socket[longCount];
        for (int i = 0; i < longCount; i++)
        {
            try
            {
                sockets[i] = await ConnectAsync(server, TimeSpan.FromSeconds(5), ct);
                await RoundTripAsync(sockets[i], new byte[32], new byte[32], ct);
                counts[i] = 1;
                Line(string.Create(CultureInfo.InvariantCulture, $"LONG {i} {sockets[i].LocalEndPoint}"));
            }
            catch (Exception ex) when (ex is SocketException or TimeoutException or IOException)
            {
                Line(string.Create(CultureInfo.InvariantCulture, $"FAILED {i} {ex.GetType().Name}: {ex.Message}"));
                return 1;
            }
        }

        Line(string.Create(CultureInfo.InvariantCulture, $"ESTABLISHED {longCount}"));
        var tasks = new List<Task>(longCount + 2);
        for (int i = 0; i < longCount; i++)
        {
            int index = i;
            tasks.Add(Task.Run(() => LongLivedAsync(index, sockets[index], intervalMs, counts, ct), ct));
        }

        if (shortRate > 0)
        {
            tasks.Add(Task.Run(() => ShortStreamAsync(server, shortRate, shortCount, shortOk, shortFail, ct), ct));
        }

        tasks.Add(Task.Run(() => ReportAsync(reportMs, counts, shortOk, shortFail, ct), ct));
        try
        {
            await Task.WhenAll(tasks);
        }
        catch (OperationCanceledException)
        {
        }

        return 0;
    }

    private static async Task<Socket> ConnectAsync(IPEndPoint server, TimeSpan timeout, CancellationToken ct)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        try
        {
            await s.ConnectAsync(server, limit.Token);
            return s;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            s.Dispose();
            throw new TimeoutException($"connect to {server} took longer than {timeout.TotalSeconds:F0} s");
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    private static async Task RoundTripAsync(Socket s, byte[] send, byte[] receive, CancellationToken ct)
    {
        await s.SendAsync(send, SocketFlags.None, ct);
        int got = 0;
        while (got < receive.Length)
        {
            int n = await s.ReceiveAsync(receive.AsMemory(got), SocketFlags.None, ct);
            if (n == 0)
            {
                throw new IOException("closed by the peer");
            }

            got += n;
        }
    }

    private static async Task LongLivedAsync(int index, Socket s, int intervalMs, long[] counts, CancellationToken ct)
    {
        using (s)
        {
            var send = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{index,8}:keepalive-echo-payload-32b"));
            Array.Resize(ref send, 32);
            var receive = new byte[32];
            try
            {
                while (!ct.IsCancellationRequested)
                {
                    await RoundTripAsync(s, send, receive, ct);
                    if (!receive.AsSpan().SequenceEqual(send))
                    {
                        Line(string.Create(CultureInfo.InvariantCulture, $"DEAD {index} echo differs"));
                        return;
                    }

                    Interlocked.Increment(ref counts[index]);
                    if (intervalMs > 0)
                    {
                        await Task.Delay(intervalMs, ct);
                    }
                }
            }
            catch (Exception ex) when (ex is SocketException or IOException)
            {
                Line(string.Create(CultureInfo.InvariantCulture, $"DEAD {index} {ex.GetType().Name}: {ex.Message}"));
            }
        }
    }

    private static async Task ShortStreamAsync(IPEndPoint server, int rate, int count, long[] ok, long[] fail, CancellationToken ct)
    {
        // R connections per second on a fixed schedule, at most 256 in flight; each its own task.
        using var inFlight = new SemaphoreSlim(256);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long started = 0;
        while (!ct.IsCancellationRequested && (count == 0 || started < count))
        {
            long due = (long)(clock.Elapsed.TotalSeconds * rate);
            if (started >= due)
            {
                await Task.Delay(Math.Max(1, 1000 / rate / 2), ct);
                continue;
            }

            await inFlight.WaitAsync(ct);
            started++;
            _ = Task.Run(async () =>
            {
                try
                {
                    using var s = await ConnectAsync(server, TimeSpan.FromSeconds(3), ct);
                    await RoundTripAsync(s, new byte[16], new byte[16], ct).WaitAsync(TimeSpan.FromSeconds(3), ct);
                    s.Shutdown(SocketShutdown.Both);
                    Interlocked.Increment(ref ok[0]);
                }
                catch (Exception ex) when (ex is SocketException or TimeoutException or IOException)
                {
                    Interlocked.Increment(ref fail[0]);
                }
                finally
                {
                    inFlight.Release();
                }
            }, ct);
        }
    }

    private static async Task ReportAsync(int reportMs, long[] counts, long[] ok, long[] fail, CancellationToken ct)
    {
        var sb = new StringBuilder(counts.Length * 6 + 64);
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(reportMs));
        do
        {
            sb.Clear();
            sb.Append(CultureInfo.InvariantCulture, $"P {DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()} {Interlocked.Read(ref ok[0])} {Interlocked.Read(ref fail[0])}");
            foreach (ref long c in counts.AsSpan())
            {
                sb.Append(' ').Append(Interlocked.Read(ref c));
            }

            Line(sb.ToString());
        }
        while (await timer.WaitForNextTickAsync(ct));
    }
}
