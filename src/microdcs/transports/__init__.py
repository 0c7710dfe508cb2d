"""Protocol handlers: they move CloudEvents and know nothing of jobs or SFC."""
