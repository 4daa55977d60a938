from .reference import REFERENCE_MODELS, ReferencePipeline, build_reference, load_reference, reference_names

__all__ = ["REFERENCE_MODELS", "ReferencePipeline", "build_reference", "load_reference", "reference_names"]
