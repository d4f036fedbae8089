// Entry point; the benchmark itself is in Bench.swift, off the main actor.
await DNSSECBenchmark.run(arguments: CommandLine.arguments)
