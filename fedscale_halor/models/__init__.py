"""Model registry: YAML model names to freshly initialized ``torch.nn.Module`` builders."""

from fedscale_halor.models.registry import MODEL_BUILDERS, ModelBuilder, build_model, model_nbytes

__all__ = ["MODEL_BUILDERS", "ModelBuilder", "build_model", "model_nbytes"]
