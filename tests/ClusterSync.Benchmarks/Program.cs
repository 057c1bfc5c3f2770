using BenchmarkDotNet.Running;
using ClusterSync.Benchmarks;

if (args.Length > 0 && args[0] == "table-memory")
{
    Console.WriteLine(TableMemory.Run());
    return 0;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
