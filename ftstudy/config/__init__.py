"""The declarations and what follows from them without data or tools: the experiment and benchmark registry,
hardware profiles and method settings, speed choices, sharding, the peak-memory model, the Axolotl YAML
generator and validator, and the study plan's expectations.

May import: core."""
