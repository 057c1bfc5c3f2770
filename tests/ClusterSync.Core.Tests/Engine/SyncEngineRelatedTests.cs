namespace ClusterSync.Core.Tests.Engine;

/// <summary>
/// Related connections (a protocol plugin's control connection and its related ones) travel as a unit: announced in
/// the same datagram as their control connection, destroyed with it. Unit tests with an in-process resolver bound in
/// the plugin slot; <c>FtpProtocolPluginTests</c> runs the real FTP plugin over UDP.
/// </summary>
public sealed class SyncEngineRelatedTests : IDisposable
{
    private readonly EnginePair _pair = new();

    public void Dispose() => _pair.Dispose();

    /// <summary>tcp/80 from 10.0.0.1:40000 is the control connection; tcp to ports 5000-5099 from 10.0.0.1 belong to it.</summary>
    private sealed class Resolver : IConnectionClassifier, IRelatedConnectionResolver
    {
        public static readonly ConnectionKey Control = EngineKit.Tcp(80, sourcePort: 40000);

        public string Name => "unit-resolver";

        public string? Classify(in ConnectionKey connection)
            => connection.DestinationPort == 80 ? EngineKit.ShortLived : connection.DestinationPort == 443 ? EngineKit.Full : EngineKit.None;

        public bool TryGetControlConnection(in ConnectionKey connection, out ConnectionKey control)
        {
            control = Control;
            return connection.DestinationPort is >= 5000 and < 5100;
        }
    }

    private static ConnectionKey Related(int i) => EngineKit.Tcp((ushort)(5000 + i), sourcePort: (ushort)(41000 + i));

    private List<List<ConnectionEvent>> Datagrams()
        => _pair.SenderChannel.DataTo(0).Select(d => EngineKit.Decode(d, _pair.Key, _pair.Sender.MemberId, _pair.Sender.Epoch)).ToList();

    /// <summary>Binds the resolver and submits its control connection, then <paramref name="related"/> related ones.</summary>
    private void SubmitControlAndRelated(int related)
    {
        _pair.Sender.Catalog.BindPlugin("unit-resolver", "1.0.0", new Resolver());
        _pair.Sender.Submit(EngineKit.New(Resolver.Control));
        for (int i = 0; i < related; i++)
        {
            _pair.Sender.Submit(EngineKit.New(Related(i)));
        }
    }

    /// <summary>Moves past the short-lived class's delay and waits until <paramref name="records"/> records went out.</summary>
    private void PastTheDelay(int records)
    {
        _pair.Time.Advance(TimeSpan.FromSeconds(3.5));
        _pair.Sender.OnTick();
        _pair.WaitForRecords(records);
    }

    [Fact]
    public void Submit_RelatedOfDelayedControl_WaitThenTravelInTheControlsDatagram()
    {
        SubmitControlAndRelated(5);

        // Classified with the control connection (short-lived, delayed), not by their own answer (none).
        for (int i = 0; i < 5; i++)
        {
            Assert.True(_pair.Sender.TryGetEntry(Related(i), out var e));
            Assert.Equal(EngineKit.ShortLived, _pair.Sender.Catalog.NameOf(e.ServiceClass));
        }

        Assert.Equal(5, _pair.Sender.Counters.RelatedTied);
        Assert.Equal(0, _pair.Sender.Counters.NeverSynced);

        PastTheDelay(6);

        var datagram = Assert.Single(Datagrams(), d => d.Any(r => r.Key == Resolver.Control));
        Assert.Equal(6, datagram.Count);
        Assert.All(datagram, r => Assert.Equal(ConnectionEventKind.New, r.Kind));
        Assert.Equal(6, _pair.SentRecords().Count);
    }

    [Fact]
    public void Submit_ControlDestroyed_RelatedDestroyedInTheSameDatagram()
    {
        SubmitControlAndRelated(3);

        PastTheDelay(4);
        // A related connection changes on its own: it travels alone (its control connection is on the peer already).
        _pair.Sender.Submit(EngineKit.Update(Related(1), ProtocolState.TcpEstablished));
        _pair.WaitForRecords(5);

        _pair.Sender.Submit(EngineKit.Destroy(Resolver.Control));

        Assert.True(_pair.SenderChannel.WaitUntil(_ => _pair.SentRecords().Count(r => r.Kind == ConnectionEventKind.Destroy) >= 4, TimeSpan.FromSeconds(10)));
        var destroys = Assert.Single(Datagrams(), d => d.Any(r => r.Kind == ConnectionEventKind.Destroy));
        Assert.Equal(4, destroys.Count);
        Assert.All(destroys, r => Assert.Equal(ConnectionEventKind.Destroy, r.Kind));
        Assert.Equal(3, _pair.Sender.Counters.RelatedDestroyedWithControl);
        Assert.Equal(0, _pair.Sender.RelatedConnectionCount);
        for (int i = 0; i < 3; i++)
        {
            Assert.False(_pair.Sender.TryGetEntry(Related(i), out var e) && (e.Status & ConnectionStatus.Tombstone) == 0);
        }
    }

    [Fact]
    public void Submit_RelatedOfUnknownControl_ClassifiedOnItsOwn()
    {
        _pair.Sender.Catalog.BindPlugin("unit-resolver", "1.0.0", new Resolver());

        _pair.Sender.Submit(EngineKit.New(Related(7))); // its control connection is not in the table

        Assert.True(_pair.Sender.TryGetEntry(Related(7), out var e));
        Assert.Equal(EngineKit.None, _pair.Sender.Catalog.NameOf(e.ServiceClass));
        Assert.Equal(0, _pair.Sender.Counters.RelatedTied);
        Assert.Equal(0, _pair.Sender.RelatedConnectionCount);
    }

    [Fact]
    public void ClassifyPlugin_CallOlderThanTimeout_WatchdogDisablesAndLateAnswerDiscarded()
    {
        var gate = new ManualResetEventSlim();
        var entered = new ManualResetEventSlim();
        var binding = _pair.Sender.Catalog.BindPlugin("slow", "1.0.0", new Blocking(gate, entered), new ClassifierGuardOptions { CallTimeout = TimeSpan.FromMilliseconds(100) });
        string? disabledReason = null;
        _pair.Sender.Catalog.PluginDisabled += (_, reason) => disabledReason = reason;
        var key = EngineKit.Tcp(443, sourcePort: 43000);
        var call = new Thread(() => _pair.Sender.Submit(EngineKit.New(key))) { IsBackground = true };
        call.Start();
        Assert.True(entered.Wait(TimeSpan.FromSeconds(10)));

        _pair.Time.Advance(TimeSpan.FromMilliseconds(150)); // the fake clock drives the watchdog timer

        Assert.True(binding.Disabled);
        Assert.Equal(1, binding.Timeouts);
        Assert.Contains("hang", disabledReason, StringComparison.Ordinal);
        gate.Set();
        Assert.True(call.Join(TimeSpan.FromSeconds(10)));
        Assert.True(_pair.Sender.TryGetEntry(key, out var e));
        Assert.Equal(EngineKit.Full, _pair.Sender.Catalog.NameOf(e.ServiceClass)); // built-in rules, not "none"
        Assert.Null(_pair.Sender.Catalog.ActivePlugin);
    }

    private sealed class Blocking(ManualResetEventSlim gate, ManualResetEventSlim entered) : IConnectionClassifier
    {
        public string Name => "slow";

        public string? Classify(in ConnectionKey connection)
        {
            entered.Set();
            gate.Wait(TimeSpan.FromSeconds(30));
            return EngineKit.None;
        }
    }
}
