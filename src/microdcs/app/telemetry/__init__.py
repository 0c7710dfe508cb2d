"""Operations: metrics, the health/metrics HTTP endpoint, and structured logs.

Nothing here is global: the runner builds one :class:`~microdcs.app.telemetry.metrics.Metrics`
per replica and hands it to whatever reports numbers.
"""
