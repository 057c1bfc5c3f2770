using System.Net;
using ClusterSync.Transport;

namespace ClusterSync.Benchmarks;

/// <summary>
/// Where a delta datagram's time goes after sealing: handing <see cref="Datagrams"/> sealed-size datagrams
/// (1400 bytes, the engine's pass over 1,024 queued updates at ~27 per datagram) to the kernel over loopback, one
/// <c>sendto</c> each (the path before batching), one <c>sendmmsg</c>, or <c>sendmmsg</c> with UDP GSO, to a
/// receiver draining with <c>recvmmsg</c> (with UDP GRO in the GSO case, as a peer of this version asks for it). The
/// kernel's loopback delivery runs inside the send call, so the receiver's stack work up to its socket queue is
/// included. Per datagram (OperationsPerInvoke); divide by ~27 for per update. 0 B allocated on every path.
/// </summary>
[MemoryDiagnoser]
public class UdpSendBenchmarks
{
    public const int Datagrams = 38;
    private const int Size = 1400;

    private UdpDatagramChannel _sender = null!;
    private UdpDatagramChannel _receiver = null!;
    private ReadOnlyMemory<byte>[] _batch = null!;
    private Thread _drain = null!;
    private volatile bool _stop;

    [Params("sendto", "sendmmsg", "sendmmsg+gso")]
    public string Path { get; set; } = "sendto";

    [GlobalSetup]
    public void Setup()
    {
        var offload = Path switch
        {
            "sendto" => UdpOffload.BatchReceive,
            "sendmmsg" => UdpOffload.BatchReceive | UdpOffload.BatchSend,
            _ => UdpOffload.All,
        };
        _sender = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500, UdpDatagramChannel.DefaultSocketBuffer, offload);
        _receiver = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500, UdpDatagramChannel.DefaultSocketBuffer, offload);
        _sender.SetPeers([_receiver.LocalEndPoint]);
        var data = new byte[Datagrams * Size];
        new Random(1).NextBytes(data);
        _batch = new ReadOnlyMemory<byte>[Datagrams];
        for (int i = 0; i < Datagrams; i++)
        {
            _batch[i] = data.AsMemory(i * Size, Size);
        }

        _drain = new Thread(() =>
        {
            var buffer = new byte[65536];
            try
            {
                while (!_stop)
                {
                    var pending = _receiver.ReceiveAsync(buffer); // completes synchronously: no Task, nothing allocated
                    _ = pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
                }
            }
            catch (OperationCanceledException)
            {
            }
        }) { IsBackground = true };
        _drain.Start();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stop = true;
        _sender.Dispose();
        _receiver.Dispose();
        _drain.Join(TimeSpan.FromSeconds(5));
    }

    /// <summary>The engine's pass: one call per datagram before batching, one batch after.</summary>
    [Benchmark(OperationsPerInvoke = Datagrams)]
    public void SendPass()
    {
        if (Path == "sendto")
        {
            foreach (var d in _batch)
            {
                _ = _sender.SendAsync(d, 0);
            }
        }
        else
        {
            _sender.SendBatch(_batch, 0);
        }
    }
}
