using ClusterSync.Adaptive.Controller;
using ClusterSync.Engine;
using ClusterSync.Node.Configuration;
using ClusterSync.Policy;
using ClusterSync.Telemetry;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace ClusterSync.Node.Runtime;

/// <summary>Source-generated log messages of the node's adaptive mode (event ids 4050-4059).</summary>
internal static partial class AdaptiveNodeLog
{
    [LoggerMessage(4050, LogLevel.Warning, "Adaptive mode: no adaptive.model and the shipped model is not usable ({Reason}); cold start")]
    public static partial void ShippedModelUnavailable(ILogger logger, string reason);
}

/// <summary>Hands every outcome to two sinks (the feedback loop and telemetry capture).</summary>
internal sealed class OutcomeFanOut(IConnectionOutcomeSink first, IConnectionOutcomeSink second) : IConnectionOutcomeSink
{
    public void OnEnded(in ConnectionOutcome outcome)
    {
        first.OnEnded(outcome);
        second.OnEnded(outcome);
    }
}

/// <summary>
/// The node's adaptive mode and telemetry capture: the controller as the engine's decider, the model watcher (hot
/// reload), the telemetry recorder; their status and metrics. Created before the engine starts.
/// </summary>
public sealed class AdaptiveNode : IDisposable
{
    private readonly SyncEngine _engine;
    private readonly string? _modelPath;
    private int _disposed;

    private AdaptiveNode(SyncEngine engine, AdaptiveController? controller, ModelWatcher? watcher, TelemetryRecorder? recorder, string? modelPath)
    {
        _engine = engine;
        Controller = controller;
        Watcher = watcher;
        Recorder = recorder;
        _modelPath = modelPath;
    }

    public AdaptiveController? Controller { get; }

    public ModelWatcher? Watcher { get; }

    public TelemetryRecorder? Recorder { get; }

    /// <summary>
    /// Composes adaptive mode and telemetry capture from the node model (<see cref="NodeHost"/> calls this while it
    /// composes the node; a damaged telemetry file is a <see cref="ConfigurationException"/>): the configured model was loaded by validation
    /// (<see cref="NodeModel.AdaptiveModel"/>), so nothing here refuses the configuration; without one, the
    /// shipped model is tried (cold start when it is missing or does not load).
    /// </summary>
    /// <param name="time">The node's clock (of the controller, the model watcher and the recorder).</param>
    /// <param name="shippedModelPath">Where the shipped model is (default: <see cref="AdaptiveNodeConfig.ShippedModelPath"/>; tests pass another).</param>
    public static AdaptiveNode Create(NodeModel model, SyncEngine engine, ILoggerFactory? loggerFactory, TimeProvider time, string? shippedModelPath = null)
    {
        var c = model.Config;
        AdaptiveController? controller = null;
        ModelWatcher? watcher = null;
        string? modelPath = null;
        string? source = null;
        string? why = null;
        string? coldStartReason = null;
        var classes = engine.Catalog.Classes;
        if (c.Adaptive.Enabled)
        {
            controller = new AdaptiveController(c.Adaptive, classes, null, time, loggerFactory?.CreateLogger("ClusterSync.Adaptive"));
            var logger = loggerFactory?.CreateLogger("ClusterSync.Node.AdaptiveNode");
            if (AdaptiveNodeConfig.IsColdStart(c.Adaptive.Model))
            {
                controller.UnloadModel();
            }
            else if (model.AdaptiveModel is { } configured && AdaptiveNodeConfig.ModelLoader is { } loader)
            {
                modelPath = configured.Path;
                controller.UseModel(configured.Predictor, modelPath);
                watcher = new ModelWatcher(controller, loader, modelPath, time);
                source = "configured";
            }
            else if (string.IsNullOrWhiteSpace(c.Adaptive.Model) && TryShipped(controller, shippedModelPath ?? AdaptiveNodeConfig.ShippedModelPath, logger, out modelPath, out why))
            {
                // No adaptive.model: the model shipped next to the binary (watched like a configured one).
                watcher = new ModelWatcher(controller, AdaptiveNodeConfig.ModelLoader!, modelPath, time);
                source = "shipped";
            }
            else
            {
                modelPath = null;
                coldStartReason = why;
                controller.UnloadModel();
            }
        }

        TelemetryRecorder? recorder = null;
        if (c.Telemetry.Enabled)
        {
            var options = c.Telemetry with { Path = AdaptiveNodeConfig.ResolvePath(model.Path, c.Telemetry.Path) };
            var ctl = controller;
            recorder = new TelemetryRecorder(options, engine.MemberId, classes, c.Adaptive.Enabled ? c.Adaptive.EffectiveNeverSkip(classes.Select(k => k.Name)) : [],
                ctl is null ? null : () => ctl.ModelName is { } m ? "model:" + m : "class-quantiles",
                () => Sample(engine, ctl), time, loggerFactory?.CreateLogger("ClusterSync.Telemetry"));
        }

        engine.Decider = controller;
        engine.OutcomeSink = (controller, recorder) switch
        {
            (not null, not null) => new OutcomeFanOut(controller, recorder),
            (not null, null) => controller,
            (null, not null) => recorder,
            _ => null,
        };
        return new AdaptiveNode(engine, controller, watcher, recorder, modelPath) { ModelSource = source, ColdStartReason = coldStartReason };
    }

    /// <summary>Loads the shipped model; false (with the reason, logged) when it is missing or does not load: cold start.</summary>
    private static bool TryShipped(AdaptiveController controller, string shipped, ILogger? logger, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? path, out string? reason)
    {
        path = shipped;
        if (AdaptiveNodeConfig.ModelLoader is not { } loader)
        {
            reason = "this build has no model runtime";
        }
        else if (!File.Exists(path))
        {
            reason = $"the shipped model {path} is missing";
        }
        else if (controller.TryLoadModel(loader, path, out var refused))
        {
            reason = null;
            return true;
        }
        else
        {
            reason = $"the shipped model {path} does not load: {refused}";
        }

        if (logger is not null)
        {
            AdaptiveNodeLog.ShippedModelUnavailable(logger, reason);
        }

        path = null;
        return false;
    }

    /// <summary><c>configured</c> (adaptive.model), <c>shipped</c> (the default next to the binary) or null (cold start).</summary>
    public string? ModelSource { get; private init; }

    /// <summary>Why adaptive mode runs without a model when none was refused on purpose (e.g. the shipped file is missing).</summary>
    public string? ColdStartReason { get; private init; }

    private static EngineSample Sample(SyncEngine engine, AdaptiveController? controller)
    {
        var x = engine.GetExposure();
        ulong last = engine.LastDataSequence;
        long lag = 0;
        foreach (var p in engine.GetPeerStatus())
        {
            if (p.Live)
            {
                lag = Math.Max(lag, (long)(last - Math.Min(last, p.AckedThrough)));
            }
        }

        var k = engine.Counters;
        return new EngineSample(k.UpdatesSent, k.BytesSent, k.Retransmissions, k.NackRangesSent, k.NackRangesReceived, engine.PendingCount, lag,
            x.Connections, x.ExposureSeconds, controller?.RealizedLoss ?? double.NaN, controller?.Price ?? 0,
            engine.LiveTemplateCount, Volatile.Read(ref k.TemplateCovered), Volatile.Read(ref k.TemplateRecordsSent));
    }

    public ExposureDocument GetExposure()
    {
        var x = _engine.GetExposure();
        return new ExposureDocument { Connections = x.Connections, ExposureSeconds = Math.Round(x.ExposureSeconds, 3) };
    }

    public AdaptiveDocument? GetAdaptive()
    {
        if (Controller is null)
        {
            return null;
        }

        var s = Controller.GetStatus();
        return new AdaptiveDocument
        {
            Mode = s.Mode,
            Model = s.Model,
            ModelPath = s.ModelPath ?? _modelPath,
            ModelLoadedAt = s.ModelLoadedAt,
            ModelSource = s.Model is null ? null : ModelSource,
            ModelTrainedAt = Controller.Predictor is LifetimeModelPredictor p && p.Model.Manifest.TrainedAtUtc.Length > 0 ? p.Model.Manifest.TrainedAtUtc : null,
            ColdStartReason = s.Model is null ? ColdStartReason : null,
            ModelReloads = s.ModelReloads,
            ModelReloadsRefused = s.ModelReloadsRefused,
            LastReloadError = s.LastReloadError,
            LossBudget = s.LossBudget,
            RealizedLoss = Finite(s.RealizedLoss),
            Price = Math.Round(s.Price, 4),
            Decisions = new Dictionary<string, long>(StringComparer.Ordinal)
            {
                ["now"] = s.DecidedNow,
                ["delayed"] = s.DecidedDelayed,
                ["never"] = s.DecidedNever,
                ["static"] = s.DecidedStatic,
                ["never_skip"] = s.DecidedNeverSkip,
                ["revised_now"] = s.RevisedNow,
                ["revised_held"] = s.RevisedHeld,
                ["guarded"] = s.DecidedGuarded,
            },
            RealizedLossSinceStart = Finite(s.RealizedLossSinceStart),
            NeverSyncClassShare = Finite(s.NeverSyncClassShare),
            Comparison = new AdaptiveComparisonDocument
            {
                SinceStart = Window(s.Comparison.SinceStart),
                LastHour = Window(s.Comparison.LastHour),
                Classes = s.Comparison.Classes.Select(k => new AdaptiveClassComparisonDocument
                {
                    Class = k.Class, StaticDelaySeconds = k.StaticDelaySeconds, RegionsGuarded = k.RegionsGuarded,
                    SinceStart = Window(k.SinceStart), LastHour = Window(k.LastHour),
                }).ToList(),
            },
            OutcomesObserved = s.OutcomesObserved,
            DriftHints = s.DriftHints,
            Classes = s.Classes.Select(k => new AdaptiveClassDocument
            {
                Name = k.Name,
                NeverSkip = k.NeverSkip,
                CheckpointSeconds = k.CheckpointSeconds,
                Outcomes = k.Outcomes,
                LifetimeP50Seconds = Finite(k.LifetimeP50Seconds),
                LifetimeP90Seconds = Finite(k.LifetimeP90Seconds),
                LifetimeP99Seconds = Finite(k.LifetimeP99Seconds),
                ObservedLongShare = Finite(k.ObservedLongShare),
                PredictedLongShare = Finite(k.PredictedLongShare),
                Drift = Finite(k.Drift),
                DriftFlagged = k.DriftFlagged,
            }).ToList(),
        };
    }

    public TelemetryDocument? GetTelemetry() => Recorder is null ? null : new TelemetryDocument
    {
        Path = Recorder.FilePath,
        Ended = Recorder.Ended,
        Written = Recorder.Written,
        Dropped = Recorder.Dropped,
        Segments = Recorder.Segments,
        SegmentsDeleted = Recorder.SegmentsDeleted,
        WriteFailures = Recorder.WriteFailures,
    };

    private static double? Finite(double v) => double.IsFinite(v) ? Math.Round(v, 4) : null;

    private static BaselineWindowDocument Window(BaselineWindow w) => new()
    {
        Connections = w.Connections,
        AdaptiveMessages = w.AdaptiveMessages,
        AdaptiveExposureSeconds = Math.Round(w.AdaptiveExposureSeconds, 3),
        StaticMessages = w.StaticMessages,
        StaticExposureSeconds = Math.Round(w.StaticExposureSeconds, 3),
        MessagesRatio = Finite(w.MessagesRatio),
        ExposureRatio = Finite(w.ExposureRatio),
        WorseOnBoth = w.WorseOnBoth,
    };

    // ------------------------------------------------------------------ metrics

    private Gauge? _exposureConnections;
    private Gauge? _exposureSeconds;
    private Gauge? _threshold;
    private Gauge? _realized;
    private Gauge? _drift;
    private Gauge? _vsStaticMessages;
    private Gauge? _vsStaticExposure;
    private Counter? _reloads;
    private Counter? _refused;
    private Counter? _written;
    private Counter? _dropped;

    /// <summary>Registers the adaptive and telemetry metrics in the node's registry (called once by <see cref="NodeMetrics"/>).</summary>
    public void RegisterMetrics(IMetricFactory factory)
    {
        _exposureConnections = factory.CreateGauge("clustersync_exposure_connections", "Connections at risk now: owned, live, not yet replicated (a failover now loses them).");
        _exposureSeconds = factory.CreateGauge("clustersync_exposure_seconds", "Summed age of the connections at risk now.");
        if (Controller is not null)
        {
            _threshold = factory.CreateGauge("clustersync_adaptive_price", "Exposure seconds one synchronized connection is worth; decisions minimize price * P(synced) + E[exposure].");
            _realized = factory.CreateGauge("clustersync_adaptive_realized_loss", "Realized share of connection-seconds left unreplicated (sum of exposure / sum of lifetime), tracked against adaptive.lossBudget.");
            _drift = factory.CreateGauge("clustersync_adaptive_drift", "Per class |mean predicted - mean observed| P(lives past the checkpoint); above adaptive.driftThreshold a retraining hint is logged.", new GaugeConfiguration { LabelNames = ["class"] });
            _vsStaticMessages = factory.CreateGauge("clustersync_adaptive_comparison_messages", "Messages (2 per synced connection) on ended connections: adaptive as applied vs the class's static policy, per class, since start and over the last hour.", new GaugeConfiguration { LabelNames = ["class", "policy", "window"] });
            _vsStaticExposure = factory.CreateGauge("clustersync_adaptive_comparison_exposure_seconds", "Exposure seconds on ended connections: adaptive as applied vs the class's static policy, per class, since start and over the last hour.", new GaugeConfiguration { LabelNames = ["class", "policy", "window"] });
            _reloads = factory.CreateCounter("clustersync_model_reloads_total", "Model files loaded and swapped in.");
            _refused = factory.CreateCounter("clustersync_model_reloads_refused_total", "Model files refused (the previous model stayed).");
        }

        if (Recorder is not null)
        {
            _written = factory.CreateCounter("clustersync_telemetry_records_written_total", "Connection lifecycle records written to the telemetry file.");
            _dropped = factory.CreateCounter("clustersync_telemetry_records_dropped_total", "Sampled lifecycle records dropped because the writer fell behind.");
        }
    }

    public void UpdateMetrics()
    {
        var x = _engine.GetExposure();
        _exposureConnections?.Set(x.Connections);
        _exposureSeconds?.Set(x.ExposureSeconds);
        if (Controller is not null)
        {
            var s = Controller.GetStatus();
            _threshold?.Set(s.Price);
            _realized?.Set(double.IsFinite(s.RealizedLoss) ? s.RealizedLoss : 0);
            foreach (var k in s.Classes)
            {
                if (double.IsFinite(k.Drift))
                {
                    _drift?.WithLabels(k.Name).Set(k.Drift);
                }
            }

            foreach (var k in s.Comparison.Classes)
            {
                foreach (var (window, w) in new[] { ("since_start", k.SinceStart), ("last_hour", k.LastHour) })
                {
                    _vsStaticMessages?.WithLabels(k.Class, "adaptive", window).Set(w.AdaptiveMessages);
                    _vsStaticMessages?.WithLabels(k.Class, "static", window).Set(w.StaticMessages);
                    _vsStaticExposure?.WithLabels(k.Class, "adaptive", window).Set(w.AdaptiveExposureSeconds);
                    _vsStaticExposure?.WithLabels(k.Class, "static", window).Set(w.StaticExposureSeconds);
                }
            }

            _reloads?.IncTo(s.ModelReloads);
            _refused?.IncTo(s.ModelReloadsRefused);
        }

        if (Recorder is not null)
        {
            _written?.IncTo(Recorder.Written);
            _dropped?.IncTo(Recorder.Dropped);
        }
    }

    public void Dispose()
    {
        // The host disposes the node runtime twice (as a singleton and as the hosted service).
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _engine.Decider = null;
        _engine.OutcomeSink = null;
        Watcher?.Dispose();
        Recorder?.Dispose();
        Controller?.Dispose();
    }
}
