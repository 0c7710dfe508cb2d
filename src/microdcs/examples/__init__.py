"""Small example processors that show the processor API."""
