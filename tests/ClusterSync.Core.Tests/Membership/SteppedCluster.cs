using ClusterSync.DataPlane;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Core.Tests.Membership;

/// <summary>
/// A few real members (stepped engines and their controllers) on one fake clock, in process, on one thread: every
/// <see cref="Step"/> advances the clock one ack interval, ticks every running member (its controller evaluates on the
/// tick) and delivers every datagram sent, over the links not cut, until the network is quiet. Deterministic: the
/// order is the members' order, and nothing runs on another thread.
/// </summary>
internal sealed class SteppedCluster : IDisposable
{
    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(5);   // the engine's ack interval
    public static readonly TimeSpan Dead = TimeSpan.FromMilliseconds(300); // 100 ms × 3, the defaults

    private readonly HashSet<(byte From, byte To)> _cut = [];
    private readonly List<(long Due, byte From, byte To, byte[] Datagram)> _held = [];
    private long _step;

    /// <param name="members">Id and priority of each member; every member has every other one as its peer.</param>
    /// <param name="window">The engines' send window, in datagrams (16 at least).</param>
    /// <param name="joining">Members that start without a complete table (Syncing until <see cref="MembershipController.MarkSynchronized"/>).</param>
    /// <param name="policy">The engines' service classes (default: <see cref="EngineKit.TestPolicy"/>).</param>
    /// <param name="wrapSink">Wraps a member's in-process sink in the sink its controller commits into (a slow data plane).</param>
    public SteppedCluster((byte Id, byte Priority)[] members, bool preemption = false, byte[]? joining = null, ClusterMode mode = ClusterMode.HighAvailability, int window = 64,
        PolicyOptions? policy = null, Func<byte, InMemoryReplicaSink, IReplicaSink>? wrapSink = null)
    {
        Key = ClusterKey.Generate();
        foreach (var (id, priority) in members)
        {
            byte[] peers = members.Select(m => m.Id).Where(p => p != id).ToArray();
            var channel = new QueueChannel(peers);
            var engine = new SyncEngine(new SyncEngineOptions
            {
                MemberId = id,
                PeerMemberIds = peers,
                TableCapacity = 1024,
                ResendBufferDatagrams = 256,
                SendWindowDatagrams = window,
                AckEveryDatagrams = 8,
                Policy = policy ?? EngineKit.TestPolicy(),
            }, channel, Key, Time);
            var logger = new ListLogger();
            var sink = new InMemoryReplicaSink();
            var controller = new MembershipController(engine, new MembershipOptions { Mode = mode, Priority = priority, Preemption = preemption, StartsSynchronized = joining?.Contains(id) != true },
                wrapSink?.Invoke(id, sink) ?? sink, Time, logger);
            engine.StartStepped();
            Members.Add(new Member(id, engine, channel, controller, sink, logger));
        }
    }

    public FakeTimeProvider Time { get; } = new(EngineKit.Start);

    public ClusterKey Key { get; }

    public List<Member> Members { get; } = [];

    public Member this[byte id] => Members.Single(m => m.Id == id);

    /// <summary>
    /// When true, a datagram sent during a step is delivered at the next step (one ack interval of latency), so a stream
    /// longer than the send window takes several steps; when false (the default) the network is instantaneous.
    /// </summary>
    public bool Latency { get; set; }

    /// <summary>
    /// Extra delay, in steps, of a datagram sent from the first member to the second (null or 0: delivered as usual): a
    /// jittery link. Held datagrams are delivered in the order they were sent once due, before the step's own traffic.
    /// </summary>
    public Func<byte, byte, int>? Hold { get; set; }

    /// <summary>Datagrams from <paramref name="from"/> to <paramref name="to"/> are lost from now on (one way).</summary>
    public void Cut(byte from, byte to) => _cut.Add((from, to));

    public void Heal(byte from, byte to) => _cut.Remove((from, to));

    /// <summary>Cuts every link to and from <paramref name="id"/>.</summary>
    public void Isolate(byte id)
    {
        foreach (var m in Members.Where(m => m.Id != id))
        {
            Cut(id, m.Id);
            Cut(m.Id, id);
        }
    }

    public void HealAll() => _cut.Clear();

    /// <summary>One ack interval: the clock, every running member's tick and sender, then every datagram delivered.</summary>
    public void Step()
    {
        Time.Advance(Tick);
        _step++;
        foreach (var m in Members.Where(m => m.Up))
        {
            m.Engine.OnTick();
            m.Engine.StepSender();
        }

        DeliverHeld();
        Deliver();
    }

    private void DeliverHeld()
    {
        var due = _held.Where(h => h.Due <= _step).ToList();
        _held.RemoveAll(h => h.Due <= _step);
        foreach (var (_, from, to, datagram) in due)
        {
            var m = Members.Single(x => x.Id == from);
            var target = Members.Single(x => x.Id == to);
            if (m.Up && target.Up && !_cut.Contains((from, to)))
            {
                target.Engine.HandleDatagram(datagram);
                target.Engine.StepSender();
            }
        }
    }

    /// <summary>Steps until <paramref name="condition"/> holds; fails after <paramref name="limit"/>. Returns the steps taken.</summary>
    public int RunUntil(Func<bool> condition, TimeSpan limit, string? what = null)
    {
        int steps = 0;
        while (!condition())
        {
            Assert.True(steps * Tick < limit, $"not reached within {limit}: {what ?? "the condition"}; states {States()}");
            Step();
            steps++;
        }

        return steps;
    }

    /// <summary>Steps for <paramref name="span"/>.</summary>
    public void Run(TimeSpan span)
    {
        for (var t = TimeSpan.Zero; t < span; t += Tick)
        {
            Step();
        }
    }

    public string States() => string.Join(", ", Members.Select(m => $"m{m.Id} {m.Controller.State}"));

    /// <summary>Delivers until no member sends anything more (each delivery may make the receiver ack or send).</summary>
    private void Deliver()
    {
        for (int round = 0; round < 1000; round++)
        {
            bool any = false;
            var sent = Members.Select(m => m.Channel.Outbox.Count).ToArray(); // with latency: only what was sent before
            for (int i = 0; i < Members.Count; i++)
            {
                var m = Members[i];
                for (int k = 0; k < sent[i] && m.Channel.Outbox.TryDequeue(out var d); k++)
                {
                    any = true;
                    var to = Members.Single(x => x.Id == d.To);
                    if (m.Up && Hold?.Invoke(m.Id, to.Id) is int hold and > 0)
                    {
                        _held.Add((_step + hold, m.Id, to.Id, d.Datagram));
                        continue;
                    }

                    if (m.Up && to.Up && !_cut.Contains((m.Id, to.Id)))
                    {
                        to.Engine.HandleDatagram(d.Datagram);
                        to.Engine.StepSender();
                    }
                }
            }

            if (!any || Latency)
            {
                return;
            }
        }

        Assert.Fail("the network never went quiet");
    }

    public void Dispose()
    {
        foreach (var m in Members)
        {
            m.Controller.Dispose();
            m.Engine.Dispose();
        }
    }

    internal sealed record Member(byte Id, SyncEngine Engine, QueueChannel Channel, MembershipController Controller, InMemoryReplicaSink Sink, ListLogger Logger)
    {
        /// <summary>False once crashed: no more ticks, nothing sent or received.</summary>
        public bool Up { get; set; } = true;

        public MemberState State => Controller.State;
    }

    /// <summary>Holds what an engine sends until the cluster delivers it.</summary>
    internal sealed class QueueChannel(byte[] peers) : IDatagramChannel
    {
        public Queue<(byte To, byte[] Datagram)> Outbox { get; } = new();

        /// <summary>Data datagrams sent to each member id so far.</summary>
        public Dictionary<byte, int> DataSent { get; } = [];

        public int MaxDatagramSize => 1400;

        public int PeerCount => peers.Length;

        public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, int peerIndex, CancellationToken cancellationToken = default)
        {
            var bytes = datagram.ToArray();
            if (CaptureChannel.IsData(bytes))
            {
                DataSent[peers[peerIndex]] = DataSent.GetValueOrDefault(peers[peerIndex]) + 1;
            }

            Outbox.Enqueue((peers[peerIndex], bytes));
            return ValueTask.CompletedTask;
        }

        public async ValueTask<DatagramReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
            throw new InvalidOperationException("Task.Delay(Infinite) completed without cancellation.");
        }

        public void Dispose()
        {
        }
    }
}

/// <summary>Keeps every log entry: event id and formatted message.</summary>
internal sealed class ListLogger : ILogger
{
    public List<(int Id, string Message)> Entries { get; } = [];

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        => Entries.Add((eventId.Id, formatter(state, exception)));

    public List<string> Of(int id) => Entries.Where(e => e.Id == id).Select(e => e.Message).ToList();
}
