using System.Reflection;
using McMaster.NETCore.Plugins;

namespace ClusterSync.IntegrationTests.Transport;

/// <summary>
/// Loads the built NATS transport plugin (plugins/Transport.Nats, its build output with NATS.Client.Core beside it) from disk
/// through McMaster.NETCore.Plugins, with the contracts as shared types: the tests exercise the real plugin assembly, never a
/// project reference to its code.
/// </summary>
internal static class NatsPlugin
{
    private static readonly Lazy<(ISyncTransportFactory Factory, string Path)> s_loaded = new(Load);

    /// <summary>Where the build put the plugin (recorded into this assembly by the test project file).</summary>
    public static string AssemblyPath => typeof(NatsPlugin).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "NatsPluginPath").Value!;

    public static ISyncTransportFactory Factory => s_loaded.Value.Factory;

    public static IStreamTransportFactory StreamFactory => (IStreamTransportFactory)s_loaded.Value.Factory;

    private static (ISyncTransportFactory, string) Load()
    {
        string path = Path.GetFullPath(AssemblyPath);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"the NATS transport plugin was not built at {path} (dotnet build plugins/Transport.Nats -c Release)", path);
        }

        var loader = PluginLoader.CreateFromAssemblyFile(path, sharedTypes: [typeof(ISyncTransportFactory), typeof(IStreamTransportFactory), typeof(IDatagramChannel)]);
        var assembly = loader.LoadDefaultAssembly();
        var type = assembly.GetTypes().Single(t => typeof(ISyncTransportFactory).IsAssignableFrom(t) && !t.IsAbstract);
        var factory = (ISyncTransportFactory)Activator.CreateInstance(type)!;
        return (factory, path);
    }
}
