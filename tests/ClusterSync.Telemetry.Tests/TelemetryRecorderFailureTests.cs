using Microsoft.Extensions.Logging;

namespace ClusterSync.Telemetry.Tests;

/// <summary>Telemetry on a damaged file or a disk that fills up: a configuration error at start, a counter while running, never a crash.</summary>
public sealed class TelemetryRecorderFailureTests : IDisposable
{
    private static readonly ServiceClassDefinition[] Classes = [new("default", SyncPolicy.Full)];

    private readonly string _dir = Directory.CreateTempSubdirectory("cs-telemetry-fail-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private TelemetryOptions Options() => new()
    {
        Enabled = true,
        Path = Path.Combine(_dir, "t.db"),
        FlushInterval = TimeSpan.FromMilliseconds(10),
        MetricsInterval = TimeSpan.FromMilliseconds(100),
        SegmentRecords = 64,
    };

    private static ConnectionOutcome Outcome(int i) => new(
        ConnectionKey.IPv4(0x0A000000u + (uint)i, 0xC0A80101, (ushort)(1024 + (i % 60000)), 443, 6),
        0, 1_000_000 + i, 1_000_500 + i, ConnectionEndReason.Destroyed, true, 0, 0.25f, 3, ProtocolState.TcpClose,
        new ConnectionCounters(10, 1000, 8, 5000), true);

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(8192)]
    [InlineData(40_000)]
    public void Constructor_DamagedFile_ConfigurationExceptionNamingFileAndHint(int garbageBytes)
    {
        var options = Options();
        var bytes = new byte[garbageBytes];
        new Random(3).NextBytes(bytes);
        File.WriteAllBytes(options.Path, bytes);
        if (garbageBytes == 0)
        {
            // A real file cut short: written by a first recorder, then truncated.
            File.Delete(options.Path);
            using (var recorder = new TelemetryRecorder(options, 1, Classes))
            {
                for (int i = 0; i < 5000; i++)
                {
                    recorder.OnEnded(Outcome(i));
                }
            }

            using var file = new FileStream(options.Path, FileMode.Open);
            file.SetLength(file.Length / 2 + 777);
        }

        var ex = Assert.Throws<ConfigurationException>(() => new TelemetryRecorder(options, 1, Classes));

        Assert.Contains($"telemetry.path: '{options.Path}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("move it aside", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Writer_DiskFillsUp_CountedOneWarningAndCleanDispose()
    {
        var logger = new CountingLogger();
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        var disk = new FillingStream(capacity: 256 * 1024);
        var recorder = new TelemetryRecorder(Options(), 1, Classes, null, null, null, time, logger, disk);
        int i = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        // Feeds outcomes, giving the below-normal writer thread a turn between batches; waits on the failure count.
        Eventually.Until(
            () => recorder.WriteFailures >= 20,
            () =>
            {
                for (int k = 0; k < 500; k++)
                {
                    recorder.OnEnded(Outcome(i++));
                }
            },
            deadline - DateTime.UtcNow,
            () => $"write failures {recorder.WriteFailures} after {i} outcomes");

        Assert.Equal(1, logger.Warnings); // many failures, one warning until the interval passes
        time.Advance(TelemetryRecorder.WarningInterval);
        long before = recorder.WriteFailures;
        Eventually.Until(
            () => recorder.WriteFailures > before + 1,
            () => recorder.OnEnded(Outcome(i++)),
            deadline - DateTime.UtcNow,
            () => "no failure after the warning interval");

        Assert.Equal(2, logger.Warnings);
        var dispose = Record.Exception(recorder.Dispose);
        Assert.Null(dispose);
        Assert.Equal(0, logger.Errors);
    }

    /// <summary>A file on a disk with <c>capacity</c> bytes free: writes past it fail as ENOSPC does.</summary>
    private sealed class FillingStream(long capacity) : MemoryStream
    {
        public override void Write(byte[] buffer, int offset, int count)
        {
            Check(count);
            base.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Check(buffer.Length);
            base.Write(buffer);
        }

        public override void SetLength(long value)
        {
            if (value > capacity)
            {
                throw new IOException("No space left on device");
            }

            base.SetLength(value);
        }

        private void Check(int count)
        {
            if (Position + count > capacity)
            {
                throw new IOException("No space left on device");
            }
        }
    }

    private sealed class CountingLogger : ILogger
    {
        public int Warnings;
        public int Errors;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel == LogLevel.Warning && eventId.Id == 5101)
            {
                Interlocked.Increment(ref Warnings);
            }
            else if (logLevel >= LogLevel.Error)
            {
                Interlocked.Increment(ref Errors);
            }
        }
    }
}
