namespace ClusterSync.Simulation;

/// <summary>
/// One direction of an in-memory byte stream, thread-safe (a full sync's client and server run as tasks the
/// simulation waits for). A byte budget models a connection cut mid-transfer: past it, writes fail and the reader
/// sees the end of the stream.
/// </summary>
internal sealed class SimPipe(long budget = long.MaxValue)
{
    private readonly object _sync = new();
    private readonly Queue<byte[]> _chunks = new();
    private int _offset;
    private long _budget = budget;
    private bool _closed;
    private TaskCompletionSource? _waiter;

    public void Write(ReadOnlySpan<byte> data)
    {
        TaskCompletionSource? wake;
        bool cut = false;
        lock (_sync)
        {
            if (_closed)
            {
                throw new IOException("the simulated connection is closed");
            }

            var take = data;
            if (take.Length > _budget)
            {
                take = take[..(int)_budget];
                cut = true;
            }

            _budget -= take.Length;
            if (take.Length > 0)
            {
                _chunks.Enqueue(take.ToArray());
            }

            if (cut)
            {
                _closed = true;
            }

            wake = _waiter;
            _waiter = null;
        }

        wake?.TrySetResult();
        if (cut)
        {
            throw new IOException("the simulated connection was reset");
        }
    }

    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_sync)
            {
                if (_chunks.Count > 0)
                {
                    var chunk = _chunks.Peek();
                    int n = Math.Min(buffer.Length, chunk.Length - _offset);
                    chunk.AsSpan(_offset, n).CopyTo(buffer.Span);
                    _offset += n;
                    if (_offset == chunk.Length)
                    {
                        _chunks.Dequeue();
                        _offset = 0;
                    }

                    return n;
                }

                if (_closed || buffer.Length == 0)
                {
                    return 0;
                }

                _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _waiter.Task;
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public void Close()
    {
        TaskCompletionSource? wake;
        lock (_sync)
        {
            _closed = true;
            wake = _waiter;
            _waiter = null;
        }

        wake?.TrySetResult();
    }
}

/// <summary>One end of an in-memory duplex stream (full sync between two simulated members).</summary>
internal sealed class SimDuplexStream(SimPipe input, SimPipe output) : Stream
{
    public static (SimDuplexStream Client, SimDuplexStream Server) CreatePair(long serverToClientBudget)
    {
        var c2s = new SimPipe();
        var s2c = new SimPipe(serverToClientBudget);
        return (new SimDuplexStream(s2c, c2s), new SimDuplexStream(c2s, s2c));
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => input.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => output.Write(buffer.AsSpan(offset, count));

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        output.Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            output.Close();
            input.Close();
        }

        base.Dispose(disposing);
    }
}
