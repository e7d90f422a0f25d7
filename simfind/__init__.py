"""simfind: find duplicate and near-duplicate images."""

__version__ = "0.1.0"
