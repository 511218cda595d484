"""Benchmarks: scripts that print their figures as ratios against a baseline measured in the same run."""
