"""Where the driver's input comes from: a consumer group, replay files, topics read to their end.

Only :mod:`.base` is imported here; each source imports its client (aiokafka) when it is used.
"""

from trainsentry.consumers.sources.base import Batch, Part, Source

__all__ = ["Batch", "Part", "Source"]
