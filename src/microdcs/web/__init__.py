"""The operator web view: pages, live updates and who may act on them."""
