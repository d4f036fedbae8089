// Entry point; the benchmark itself is in Bench.swift, off the main actor.
await ResolverBenchmark.run(arguments: CommandLine.arguments)
