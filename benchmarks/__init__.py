"""Benchmarks: HealBench measures how well Healer heals, and how often it is wrong."""
