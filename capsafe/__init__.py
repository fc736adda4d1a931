"""capsafe: measure what fine-tuning did to a language model's safety, grounded in capability."""

__version__ = "0.1.0"
