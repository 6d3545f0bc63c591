"""ftstudy: one base model fine-tuned eleven ways, each benchmarked before and after.

The package imports no torch, transformers or vLLM at start-up; the heavy tools run in their own environments.
"""
__version__ = "0.1.0"
