using System.CommandLine;
using ClusterSync.Security;

namespace ClusterSync.Cli.Commands;

/// <summary><c>clustersync keygen --out FILE</c>: a new cluster key file (mode 0600).</summary>
internal static class KeygenCommand
{
    public static Command Create()
    {
        var output = new Option<FileInfo>("--out", "-o") { Description = "Where to write the key file.", Required = true };
        var force = new Option<bool>("--force") { Description = "Overwrite an existing file." };
        var command = new Command("keygen", "Write a new cluster key file; every member of a cluster needs the same one.") { output, force };
        command.SetAction(parse =>
        {
            var file = parse.GetValue(output)!;
            PathOptions.OutputFile("--out", file.FullName);
            if (file.Exists && !parse.GetValue(force))
            {
                Console.Error.WriteLine($"clustersync: {file.FullName}: the file exists; pass --force to overwrite it (members using the old key will stop accepting this one's packets)");
                return CommandLine.BadInput;
            }

            Write(file.FullName, ClusterKey.Generate());
            Console.WriteLine($"wrote {file.FullName}");
            return CommandLine.Success;
        });
        return command;
    }

    /// <summary>Writes the key file with mode 0600, also over an existing file (<see cref="ClusterKey.WriteFile"/>).</summary>
    public static void Write(string path, ClusterKey key) => key.WriteFile(path);
}
