"""aoi: a git-native organisation of AI agents."""

__version__ = "0.1.0"
