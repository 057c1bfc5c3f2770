using Microsoft.Extensions.Logging;

namespace ClusterSync.Adaptive.Controller;

public sealed partial class AdaptiveController
{
    /// <summary>Source-generated log messages with fixed event ids (5xxx: adaptive mode).</summary>
    private static partial class Log
    {
        [LoggerMessage(5001, LogLevel.Information, "Adaptive mode: model '{Model}' loaded from {Path}")]
        public static partial void ModelLoaded(ILogger logger, string model, string path);

        [LoggerMessage(5002, LogLevel.Warning, "Adaptive mode: model file refused, the previous model stays ({Previous}): {Reason}")]
        public static partial void ModelRefused(ILogger logger, string previous, string reason);

        [LoggerMessage(5003, LogLevel.Information, "Adaptive mode: no model, cold start (online per-class lifetime quantiles; static class policies until a class has {MinSamples} outcomes)")]
        public static partial void ColdStart(ILogger logger, int minSamples);

        [LoggerMessage(5004, LogLevel.Warning, "Retraining hint: class '{Class}' drifts: predicted P(lives > {Checkpoint}s) {Predicted:F3}, observed {Observed:F3} over {Samples:F0} outcomes (model {Model})")]
        public static partial void DriftHint(ILogger logger, string @class, double checkpoint, double predicted, double observed, double samples, string model);

        [LoggerMessage(5005, LogLevel.Debug, "Adaptive feedback: realized loss {Realized:F4} (budget {Budget}), price {Previous:F3} -> {Price:F3}")]
        public static partial void PriceMoved(ILogger logger, double realized, double budget, double previous, double price);

        [LoggerMessage(5006, LogLevel.Error, "Adaptive feedback batch failed")]
        public static partial void FeedbackFailed(ILogger logger, Exception ex);
    }
}
