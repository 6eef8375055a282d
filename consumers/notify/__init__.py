"""``trainsentry notify``: alerts sent where people are (chat, email, webhooks), throttled.

The way through, one module each:

- :mod:`.alert_records`: a record of the alerts topic read as an alert and its severity;
- :mod:`.filters`: which alerts count (``--trial``, ``--rule``, ``--min-severity``);
- :mod:`.throttle`: at most one message per (trial, rule) per ``--wait`` seconds, the rest counted;
- :mod:`.message`: what a person reads, in a chat window or a mail;
- :mod:`.destinations` and :mod:`.redaction`: one apprise URL per destination, secrets never shown;
- :mod:`.delivery`: each destination's own queue, retries with backoff, give-up, counts;
- :mod:`.checkpoints`: what may be committed once every destination is done with it;
- :mod:`.state_store`: the throttle's state kept beside the committed offsets;
- :mod:`.settings`: the ``[notify]`` table of the configuration and the command's options;
- :mod:`.notifier`: the consumer loop that ties them together.
"""
