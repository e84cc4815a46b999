"""Review and rework: the review station (``veil review``, a local web page on Starlette served by uvicorn:
``server`` (uvicorn), ``protocol`` (its HTTP/1.1 with deadlines and a connection bound), ``guard`` (headers,
Host/Origin, limits, failures), ``web`` (routes), ``station`` (items and pictures), ``auth`` (token and
sessions), ``media`` and ``unmasked`` (masked pictures only), ``queue``) to finish what the detector left
uncertain, and rework (``rework/``, ``rework_watch``) that re-renders an item from its kept original with a
person's edits and publishes it. May import ``pipeline``, ``daemon.log``, ``daemon.config``,
``daemon.publish``, ``daemon.models``, ``daemon.intake.zones`` and ``daemon.audit``; never the service core or
the command line (the service starts ``rework_watch``, not the other way round).
"""
