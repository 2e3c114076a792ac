"""Example retail pipelines and their seeded data generator."""
