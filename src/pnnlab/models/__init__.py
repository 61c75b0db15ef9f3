"""Model builders used by experiments and benchmarks: a plant-backed network for a task."""
