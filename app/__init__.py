"""Stock Dispatch."""
