using System.Threading.Channels;

namespace ClusterSync.Core.Tests.FullSync;

/// <summary>An in-memory connected pair of streams (no network), with an optional byte tamperer on one side's reads.</summary>
internal sealed class MemoryDuplex : Stream
{
    private readonly Channel<byte[]> _in;
    private readonly Channel<byte[]> _out;
    private byte[] _current = [];
    private int _offset;
    private long _readTotal;

    private MemoryDuplex(Channel<byte[]> input, Channel<byte[]> output)
    {
        _in = input;
        _out = output;
    }

    /// <summary>Called with (absolute offset of the first byte, bytes just read) before a read returns.</summary>
    public Action<long, Memory<byte>>? OnRead { get; set; }

    public static (MemoryDuplex A, MemoryDuplex B) CreatePair()
    {
        var ab = Channel.CreateUnbounded<byte[]>();
        var ba = Channel.CreateUnbounded<byte[]>();
        return (new MemoryDuplex(ba, ab), new MemoryDuplex(ab, ba));
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_offset == _current.Length)
        {
            if (!await _in.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false) || !_in.Reader.TryRead(out var next))
            {
                return 0;
            }

            _current = next;
            _offset = 0;
        }

        int n = Math.Min(buffer.Length, _current.Length - _offset);
        _current.AsMemory(_offset, n).CopyTo(buffer);
        _offset += n;
        OnRead?.Invoke(_readTotal, buffer[..n]);
        _readTotal += n;
        return n;
    }

    public override void Write(byte[] buffer, int offset, int count) => _out.Writer.TryWrite(buffer.AsSpan(offset, count).ToArray());

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        _out.Writer.TryWrite(buffer.ToArray());
        return ValueTask.CompletedTask;
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        _out.Writer.TryComplete();
        base.Dispose(disposing);
    }
}
