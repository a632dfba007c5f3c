"""The chunk executor's decisions: queue, fusion, interpolation, trigger, latency, metrics."""
