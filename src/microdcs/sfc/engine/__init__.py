"""The SFC engine: runs job recipes on every replica through Redis streams, timers and CAS.

:mod:`~microdcs.sfc.engine.plan` is pure (what to store and do for one evolution),
:mod:`~microdcs.sfc.engine.store` is the Redis side, :mod:`~microdcs.sfc.engine.engine`
the long-running task, :mod:`~microdcs.app.wiring.sfc` binds it into a runtime.
"""
