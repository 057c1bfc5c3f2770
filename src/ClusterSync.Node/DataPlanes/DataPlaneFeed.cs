using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Protocol;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Node.DataPlanes;

/// <summary>
/// <c>dataPlane.source: feed</c>: an external data plane streams this member's connection changes over TCP on
/// 127.0.0.1 (<see cref="RecordStream"/> frames), as a kernel streams conntrack events to a sync daemon. The demo is
/// that data plane: it keeps the ground truth of which connections are alive in the Active's "kernel", so it can count
/// what a failover preserved and lost. Changes are submitted only while this member is Active (only an Active member's
/// data plane carries traffic); otherwise they are read and counted as dropped. One client at a time; a dedicated
/// thread; backpressure by not reading while the engine holds more than 65,536 pending connections.
/// </summary>
public sealed partial class DataPlaneFeed : IDisposable
{
    private const int BackpressurePending = 64 * 1024;
    private readonly SyncEngine _engine;
    private readonly Func<bool> _active;
    private readonly ILogger _logger;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private Thread? _thread;
    private long _submitted;
    private long _dropped;
    private long _connections;

    public DataPlaneFeed(SyncEngine engine, int port, Func<bool> active, ILogger logger)
    {
        _engine = engine;
        _active = active;
        _logger = logger;
        _listener = new TcpListener(IPAddress.Loopback, port);
    }

    public long Submitted => Interlocked.Read(ref _submitted);

    public long Dropped => Interlocked.Read(ref _dropped);

    public long Connections => Interlocked.Read(ref _connections);

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public void Start()
    {
        _listener.Start(1);
        _thread = new Thread(Run) { IsBackground = true, Name = "cs-feed" };
        _thread.Start();
        Log.Listening(_logger, Port);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _thread?.Join(TimeSpan.FromSeconds(5));
        _listener.Dispose();
        _stop.Dispose();
    }

    private void Run()
    {
        var frame = new byte[RecordStream.MaxFrameBytes];
        var staging = new ConnectionEvent[4096];
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = _listener.AcceptSocket();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            Interlocked.Increment(ref _connections);
            using (client)
            using (_stop.Token.Register(() => client.Close()))
            {
                try
                {
                    while (!_stop.IsCancellationRequested && ReadExactly(client, frame.AsSpan(0, 4)))
                    {
                        int length = BinaryPrimitives.ReadInt32BigEndian(frame);
                        if (length is < 0 or > RecordStream.MaxFrameBytes)
                        {
                            Log.BadFrame(_logger, length);
                            break; // the stream is out of step: drop the connection
                        }

                        if (!ReadExactly(client, frame.AsSpan(0, length)))
                        {
                            break;
                        }

                        Submit(frame.AsSpan(0, length), staging);
                    }
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    // The data plane went away (or this node is stopping): wait for the next one.
                }
            }
        }
    }

    private void Submit(ReadOnlySpan<byte> records, ConnectionEvent[] staging)
    {
        while (!records.IsEmpty)
        {
            int n = RecordCodec.ReadMany(ref records, staging);
            if (n == 0)
            {
                Log.BadFrame(_logger, records.Length);
                return;
            }

            if (!_active())
            {
                Interlocked.Add(ref _dropped, n);
                continue;
            }

            while (_engine.PendingCount > BackpressurePending && !_stop.IsCancellationRequested)
            {
                _stop.Token.WaitHandle.WaitOne(1);
            }

            _engine.Submit(staging.AsSpan(0, n));
            Interlocked.Add(ref _submitted, n);
        }
    }

    private static bool ReadExactly(Socket socket, Span<byte> into)
    {
        while (!into.IsEmpty)
        {
            int n = socket.Receive(into);
            if (n == 0)
            {
                return false;
            }

            into = into[n..];
        }

        return true;
    }

    private static partial class Log
    {
        [LoggerMessage(4201, LogLevel.Information, "Data-plane feed on tcp://127.0.0.1:{Port} (changes are submitted while this member is Active)")]
        public static partial void Listening(ILogger logger, int port);

        [LoggerMessage(4202, LogLevel.Warning, "Data-plane feed: invalid frame or record ({Length} bytes); the rest of the frame is skipped")]
        public static partial void BadFrame(ILogger logger, int length);
    }
}
