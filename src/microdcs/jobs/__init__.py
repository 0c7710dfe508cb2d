"""Job management northbound (OPC 40001-3 / OPC 10031-4): state machine, storage, processor."""
