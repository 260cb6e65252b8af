//! zabflow-bench: benchmark scenarios and latency reports.
