"""Southbound: the equipment processor that commands equipment, and an equipment simulator."""
