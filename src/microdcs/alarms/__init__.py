"""Alarm management (ISA-18.2 / IEC 62682) on the tags of the current value table."""
