"""The regions each provider offers (public regions as of 2025), used to validate ``Spec.region``.

Kept as data so a new region is a one-line change; ``is_known_region`` is the only API.
"""

from __future__ import annotations

PROVIDERS = ("aws", "gcp", "azure")

REGIONS: dict[str, frozenset[str]] = {
    "aws": frozenset(
        {
            "us-east-1", "us-east-2", "us-west-1", "us-west-2",
            "af-south-1",
            "ap-east-1", "ap-east-2", "ap-south-1", "ap-south-2",
            "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
            "ap-southeast-5", "ap-southeast-7",
            "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
            "ca-central-1", "ca-west-1",
            "eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3",
            "eu-south-1", "eu-south-2", "eu-north-1",
            "il-central-1", "me-south-1", "me-central-1", "mx-central-1", "sa-east-1",
            "us-gov-east-1", "us-gov-west-1", "cn-north-1", "cn-northwest-1",
        }
    ),
    "gcp": frozenset(
        {
            "africa-south1",
            "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2", "asia-northeast3",
            "asia-south1", "asia-south2", "asia-southeast1", "asia-southeast2",
            "australia-southeast1", "australia-southeast2",
            "europe-central2", "europe-north1", "europe-north2", "europe-southwest1",
            "europe-west1", "europe-west2", "europe-west3", "europe-west4", "europe-west6",
            "europe-west8", "europe-west9", "europe-west10", "europe-west12",
            "me-central1", "me-central2", "me-west1",
            "northamerica-northeast1", "northamerica-northeast2", "northamerica-south1",
            "southamerica-east1", "southamerica-west1",
            "us-central1", "us-east1", "us-east4", "us-east5", "us-south1",
            "us-west1", "us-west2", "us-west3", "us-west4",
        }
    ),
    "azure": frozenset(
        {
            "eastus", "eastus2", "centralus", "northcentralus", "southcentralus", "westcentralus",
            "westus", "westus2", "westus3", "canadacentral", "canadaeast", "mexicocentral",
            "brazilsouth", "brazilsoutheast",
            "northeurope", "westeurope", "uksouth", "ukwest", "francecentral", "francesouth",
            "germanywestcentral", "germanynorth", "switzerlandnorth", "switzerlandwest",
            "norwayeast", "norwaywest", "swedencentral", "polandcentral", "italynorth", "spaincentral",
            "uaenorth", "uaecentral", "qatarcentral", "israelcentral",
            "southafricanorth", "southafricawest",
            "centralindia", "southindia", "westindia",
            "eastasia", "southeastasia", "japaneast", "japanwest", "koreacentral", "koreasouth",
            "australiaeast", "australiasoutheast", "australiacentral", "australiacentral2",
            "newzealandnorth",
        }
    ),
}  # fmt: skip


def is_known_region(provider: str, region: str) -> bool:
    """Whether ``region`` is one of ``provider``'s regions."""
    return region in REGIONS.get(provider, frozenset())


def example_regions(provider: str, count: int = 3) -> list[str]:
    """A few regions of the provider, for error messages."""
    return sorted(REGIONS.get(provider, frozenset()))[:count]
