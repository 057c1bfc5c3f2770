using ClusterSync.Cli;

return await CommandLine.RunAsync(args).ConfigureAwait(false);
