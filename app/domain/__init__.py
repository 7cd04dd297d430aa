"""The functional core: frozen dataclasses and pure functions. No I/O, no clock, no framework."""
