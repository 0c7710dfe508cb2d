"""The processor API: typed handlers on CloudEvents, routing vocabulary, the pipeline.

What a processor author imports::

    from microdcs.processing import CloudEventProcessor, Direction, MessageContext, handles
"""

from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles
from microdcs.processing.routing import Direction, Intent

__all__ = ["CloudEventProcessor", "Direction", "Intent", "MessageContext", "handles"]
