"""Plant data: tags, their current value table in Redis, and its publication."""
