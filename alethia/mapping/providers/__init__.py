"""The registry of ProviderTfvars: one module per cloud, looked up by the Spec's provider."""

from __future__ import annotations

from alethia.errors import InvalidArgument
from alethia.mapping.core import ProviderMapping
from alethia.mapping.providers.aws import AWS
from alethia.mapping.providers.azure import AZURE
from alethia.mapping.providers.gcp import GCP

REGISTRY: dict[str, ProviderMapping] = {m.name: m for m in (AWS, GCP, AZURE)}


def get(provider: str) -> ProviderMapping:
    """The mapping of ``provider``; ``InvalidArgument`` on ``provider`` when there is none."""
    mapping = REGISTRY.get(provider)
    if mapping is None:
        raise InvalidArgument.one("provider", "must be one of " + ", ".join(REGISTRY))
    return mapping
