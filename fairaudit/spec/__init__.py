"""The YAML audit spec: pydantic models, a position-aware loader and plugin-parameter checks."""

from fairaudit.spec.loader import load_spec, load_spec_text
from fairaudit.spec.models import AuditSpec, Component

__all__ = ["AuditSpec", "Component", "load_spec", "load_spec_text"]
