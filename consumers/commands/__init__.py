"""The ``trainsentry`` commands, one module each.

A command module has ``NAME``, ``HELP``, ``configure(parser)`` adding its options, and
``execute(args) -> int`` doing the work; it imports what it needs (aiokafka, the engine) inside
``execute``, so the parser is built fast and a command that needs no Kafka runs without it.
``tap`` is the exception: its arguments go to the log tap's own parser (:mod:`.tap`).
"""
