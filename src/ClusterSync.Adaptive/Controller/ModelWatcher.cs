namespace ClusterSync.Adaptive.Controller;

/// <summary>
/// Hot reload: watches the model file (file-system notifications plus a poll every
/// <see cref="AdaptiveOptions.ReloadPollInterval"/>, on the injected clock) and hands a changed file to
/// <see cref="AdaptiveController.TryLoadModel"/>, which validates it and swaps it in atomically, or refuses it and keeps
/// the model in use. Deploy by writing the new file next to the old one and renaming it over (an atomic replace).
/// </summary>
public sealed class ModelWatcher : IDisposable
{
    private readonly AdaptiveController _controller;
    private readonly IModelLoader _loader;
    private readonly string _path;
    private readonly FileSystemWatcher? _watcher;
    private readonly ITimer _timer;
    private readonly object _gate = new();
    private (DateTime Written, long Length) _seen;

    public ModelWatcher(AdaptiveController controller, IModelLoader loader, string path, TimeProvider? time = null)
    {
        _controller = controller;
        _loader = loader;
        _path = Path.GetFullPath(path);
        _seen = Stamp();
        var dir = Path.GetDirectoryName(_path);
        if (dir is not null && Directory.Exists(dir))
        {
            _watcher = new FileSystemWatcher(dir, Path.GetFileName(_path))
            {
                NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime,
            };
            _watcher.Changed += (_, _) => Check();
            _watcher.Created += (_, _) => Check();
            _watcher.Renamed += (_, _) => Check();
            _watcher.EnableRaisingEvents = true;
        }

        var interval = controller.Options.ReloadPollInterval;
        _timer = (time ?? TimeProvider.System).CreateTimer(_ => Check(), null, interval, interval);
    }

    /// <summary>Reload attempts made for a changed file.</summary>
    public int Attempts { get; private set; }

    /// <summary>Loads the file again if it changed since it was last seen (the watcher and the poll both call this).</summary>
    public void Check()
    {
        lock (_gate)
        {
            var stamp = Stamp();
            if (stamp == _seen || stamp.Length < 0)
            {
                return;
            }

            _seen = stamp;
            Attempts++;
            _controller.TryLoadModel(_loader, _path, out _);
        }
    }

    private (DateTime Written, long Length) Stamp()
    {
        try
        {
            var info = new FileInfo(_path);
            return info.Exists ? (info.LastWriteTimeUtc, info.Length) : (DateTime.MinValue, -1);
        }
        catch (IOException)
        {
            return (DateTime.MinValue, -1);
        }
    }

    public void Dispose()
    {
        _timer.Dispose();
        _watcher?.Dispose();
    }
}
