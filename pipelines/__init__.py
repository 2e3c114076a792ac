"""The example retail pipeline repo of the checkout (healer.yml, jobs/).

Its data generator and drift helpers are installed with Healer as ``healer.examples.generate``
and ``healer.examples.drift``; ``pipelines.generate`` and ``pipelines.drift`` are the same modules.
"""
