"""EVI hub: the consent-gated integration hub behind an "En väg in" joint reception."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("evi-hub")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
