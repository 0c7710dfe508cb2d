"""The retained-topic publisher of job management and the lease that elects it."""
