"""Publishing: durable writes, routing a finished job to output/, review/ or failed/, and its sidecars.

Owns every write that makes a result visible. Imports ``pipeline`` records, ``daemon.config`` and
``daemon.audit``; never the service or the command line.
"""
