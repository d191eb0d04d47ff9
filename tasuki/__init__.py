"""tasuki: repairs the boundaries of a The Model revenue organisation.

The importable parts follow the design card: ``connectors``, ``rules``,
``webhooks`` and ``worker`` at the top level; everything else (settings,
store, pipeline, KPIs, CLI) lives in this package.
"""

__version__ = "0.1.0"
